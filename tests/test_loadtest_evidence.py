"""The arithmetic behind the report: in-flight sweep, io ceiling, the one-line answers."""

from __future__ import annotations

import pytest

from loadtest.measure import evidence


def rec(pid: str, thread: str, start: float, end: float) -> dict:
    return {
        "t": start,
        "ms": (end - start) * 1000,
        "pid": pid,
        "thread": thread,
        "start": f"{start:.6f}",
        "end": f"{end:.6f}",
    }


def test_back_to_back_requests_are_not_overlap():
    # a one-at-a-time server: each request starts the moment the previous one ended
    assert evidence.max_in_flight([(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)]) == 1


def test_overlapping_requests_are_counted_at_their_peak():
    assert evidence.max_in_flight([(0, 3), (1, 2), (1.5, 2.5), (2.6, 4)]) == 3
    assert evidence.max_in_flight([]) == 0


def test_facts_count_processes_lanes_and_skip_records_without_identity():
    records = [
        rec("10", "MainThread", 0, 1),
        rec("11", "MainThread", 0.2, 1.2),
        rec("11", "MainThread", 1.2, 2.0),
        {"t": 0, "ms": 5, "pid": None, "thread": None, "start": None, "end": None},  # connection refused
    ]
    facts = evidence.facts(records)
    assert facts["requests"] == 4 and facts["with_identity"] == 3
    assert facts["pids"] == 2 and facts["threads"] == 2 and facts["max_threads_per_pid"] == 1
    assert facts["max_in_flight"] == 2


@pytest.mark.parametrize(
    ("users", "sleep_s", "capacity", "ceiling"),
    [(10, 0.5, 1, 2.0), (10, 0.5, 4, 8.0), (10, 0.5, None, 20.0), (3, 0.5, 8, 6.0), (10, 0, 1, None)],
)
def test_io_ceiling(users, sleep_s, capacity, ceiling):
    assert evidence.io_ceiling(users, sleep_s, capacity) == ceiling


def test_answers_follow_the_numbers():
    base = {"users": 10, "rps": 2.0, "with_identity": 20, "error": ""}
    single = evidence.answer("x", "io", {**base, "pids": 1, "threads": 1, "max_in_flight": 1, "capacity": 1})
    assert single.startswith("x: 1 process, 1 thread") and "at most 1 in flight" in single
    sync = evidence.answer(
        "y",
        "io",
        {**base, "pids": 4, "threads": 4, "max_threads_per_pid": 1, "max_in_flight": 4, "capacity": 4},
    )
    assert "4 processes, 1 thread each" in sync and "the other 6 users queued" in sync
    threaded = evidence.answer(
        "z", "cpu", {**base, "pids": 1, "threads": 10, "max_in_flight": 9, "capacity": 10}
    )
    assert "up to 9 of 10" in threaded
    failed = evidence.answer("w", "io", {"error": "failed to start: exited with status 1"})
    assert failed == "w: no measurement -- failed to start: exited with status 1"


def hello_records(threads: int, pids: int = 1, n: int = 400, app_s: float = 0.00008) -> list[dict]:
    """Sub-millisecond requests, one after another, cycling over ``threads`` lanes (µs timestamps)."""
    t0 = 1_700_000_000.0
    return [
        rec(str(100 + i % pids), f"Thread-{i % threads + 1}", t0 + i * 0.0003, t0 + i * 0.0003 + app_s)
        for i in range(n)
    ]


def hello_row(records: list[dict], users: int, capacity: int | None) -> dict:
    return {"users": users, "rps": 3122.0, "error": "", "capacity": capacity, **evidence.facts(records)}


def test_sub_millisecond_requests_on_a_threaded_server_are_not_called_queued():
    row = hello_row(hello_records(threads=16), users=16, capacity=16)
    assert row["max_in_flight"] == 1 and row["app_ms_p50"] < 0.1
    sentence = evidence.answer("lab-threaded", "hello", row)
    assert "no overlap observed inside the app" in sentence and "0.08 ms" in sentence
    assert "waited in line" not in sentence
    assert "new thread per connection" not in sentence  # 16 threads for 16 keep-alive users: one each


def test_a_single_lane_still_waits_in_line_however_short_the_requests():
    row = hello_row(hello_records(threads=1), users=16, capacity=1)
    assert "requests waited in line, at most 1 in flight" in evidence.answer("lab-single", "hello", row)


def test_long_requests_one_at_a_time_on_several_lanes_are_queued():
    records = [rec("1", f"T{i % 4}", i * 0.01, i * 0.01 + 0.005) for i in range(40)]
    row = hello_row(records, users=4, capacity=4)
    assert row["app_ms_p50"] == pytest.approx(5.0) and row["max_in_flight"] == 1
    assert "requests waited in line" in evidence.answer("x", "hello", row)


def test_a_new_thread_per_connection_needs_more_threads_than_users():
    row = hello_row(hello_records(threads=40), users=16, capacity=None)
    sentence = evidence.answer("flask-dev", "hello", row)
    assert "a new thread per connection: 40 threads for 16 users" in sentence
    pool = hello_row(hello_records(threads=8, pids=2), users=4, capacity=8)  # a fixed pool larger than users
    assert "new thread per connection" not in evidence.answer("gunicorn-gthread", "hello", pool)


def gthread_records() -> list[dict]:
    """pid A: both threads busy 0..1 s; pid B: one thread busy 0..1 s, the other free until 1 s."""
    return [
        rec("A", "t1", 0.0, 1.0),
        rec("A", "t2", 0.0, 1.0),
        rec("B", "t1", 0.0, 1.0),
        rec("B", "t2", 1.0, 2.0),
        rec("A", "t1", 1.0, 2.0),
        rec("A", "t2", 1.0, 2.0),
        rec("B", "t1", 1.0, 2.0),
    ]


def test_pool_imbalance_measures_time_one_process_was_full_while_another_had_room():
    got = evidence.pool_imbalance(gthread_records(), users=4)
    assert got["full_while_free_s"] == pytest.approx(1.0) and got["share"] == pytest.approx(0.5)
    assert got["intervals"] == [(0.0, 1.0)] and got["pool"] == {"A": 2, "B": 2}
    # with 3 users, all 3 requests were inside the app: nobody waited, nothing to explain
    assert evidence.pool_imbalance(gthread_records(), users=3)["share"] == 0.0
    # one thread per process (gunicorn-sync) or one process: the question does not arise
    assert evidence.pool_imbalance([rec("A", "t", 0, 1), rec("B", "t", 0, 1)]) is None


def test_the_sentence_says_why_a_multi_process_pool_missed_its_ceiling():
    row = {
        "users": 4,
        "rps": 3.5,
        "error": "",
        "capacity": 4,
        "io_ceiling": 4.0,
        "io_efficiency": 0.87,
        **evidence.facts(gthread_records(), users=4),
    }
    sentence = evidence.answer("gunicorn-gthread", "io", row)
    assert "for 50% of the run one process had all its threads busy while another had a free one" in sentence
    assert "87% of the 4.0 req/s" in sentence


def test_errors_are_split_in_the_sentence():
    row = {
        **hello_row(hello_records(threads=1), users=2, capacity=1),
        "requests": 100,
        "failures": 12,
        "errors": {"non_2xx": 10, "connection_refused": 0, "connection_reset": 2, "timeout": 0, "other": 0},
    }
    sentence = evidence.answer("x", "hello", row)
    assert "12 of 100 requests failed: 10 non 2xx, 2 connection reset" in sentence


def test_a_process_handed_fewer_connections_still_counts_its_idle_threads():
    # B never shows its second thread: it was never handed a second connection
    records = [rec("A", "t1", 0.0, 1.0), rec("A", "t2", 0.0, 1.0), rec("B", "t1", 0.0, 1.0)]
    got = evidence.pool_imbalance(records, users=4)
    assert got["pool"] == {"A": 2, "B": 2} and got["share"] == pytest.approx(1.0)
