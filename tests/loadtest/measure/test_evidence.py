"""The arithmetic behind the report: in-flight sweep, io ceiling, the one-line answers."""

from __future__ import annotations

import pytest

from loadtest.measure import evidence
from loadtest.registry.records import ComparisonRow


def answer(name: str, scenario: str, figures: dict) -> str:
    """``evidence.answer`` on the figures read back as the run record does."""
    return evidence.answer(
        name, scenario, ComparisonRow.from_dict({**figures, "scenario": scenario, "target": name})
    )


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
    single = answer("x", "io", {**base, "pids": 1, "threads": 1, "max_in_flight": 1, "capacity": 1})
    assert single.startswith("x: 1 process, 1 thread") and "at most 1 in flight" in single
    sync = answer(
        "y",
        "io",
        {**base, "pids": 4, "threads": 4, "max_threads_per_pid": 1, "max_in_flight": 4, "capacity": 4},
    )
    assert "4 processes, 1 thread each" in sync and "the other 6 users queued" in sync
    threaded = answer("z", "cpu", {**base, "pids": 1, "threads": 10, "max_in_flight": 9, "capacity": 10})
    assert "up to 9 of 10" in threaded
    failed = answer("w", "io", {"error": "failed to start: exited with status 1"})
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
    sentence = answer("lab-threaded", "hello", row)
    assert "no overlap observed inside the app" in sentence and "0.08 ms" in sentence
    assert "waited in line" not in sentence
    assert "new thread per connection" not in sentence  # 16 threads for 16 keep-alive users: one each


def test_a_single_lane_still_waits_in_line_however_short_the_requests():
    row = hello_row(hello_records(threads=1), users=16, capacity=1)
    assert "requests waited in line, at most 1 in flight" in answer("lab-single", "hello", row)


def test_long_requests_one_at_a_time_on_several_lanes_are_queued():
    records = [rec("1", f"T{i % 4}", i * 0.01, i * 0.01 + 0.005) for i in range(40)]
    row = hello_row(records, users=4, capacity=4)
    assert row["app_ms_p50"] == pytest.approx(5.0) and row["max_in_flight"] == 1
    assert "requests waited in line" in answer("x", "hello", row)


def test_a_new_thread_per_connection_needs_more_threads_than_users():
    row = hello_row(hello_records(threads=40), users=16, capacity=None)
    sentence = answer("flask-dev", "hello", row)
    assert "a new thread per connection: 40 threads for 16 users" in sentence
    pool = hello_row(hello_records(threads=8, pids=2), users=4, capacity=8)  # a fixed pool larger than users
    assert "new thread per connection" not in answer("gunicorn-gthread", "hello", pool)


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
    sentence = answer("gunicorn-gthread", "io", row)
    assert "for 50% of the run one process had all its threads busy while another had a free one" in sentence
    assert "87% of the 4.0 req/s" in sentence


def test_errors_are_split_in_the_sentence():
    row = {
        **hello_row(hello_records(threads=1), users=2, capacity=1),
        "requests": 100,
        "failures": 12,
        "errors": {"non_2xx": 10, "connection_refused": 0, "connection_reset": 2, "timeout": 0, "other": 0},
    }
    sentence = answer("x", "hello", row)
    assert "12 of 100 requests failed: 10 non 2xx, 2 connection reset" in sentence


def test_a_process_handed_fewer_connections_still_counts_its_idle_threads():
    # B never shows its second thread: it was never handed a second connection
    records = [rec("A", "t1", 0.0, 1.0), rec("A", "t2", 0.0, 1.0), rec("B", "t1", 0.0, 1.0)]
    got = evidence.pool_imbalance(records, users=4)
    assert got["pool"] == {"A": 2, "B": 2} and got["share"] == pytest.approx(1.0)


def cpu_row(**over) -> dict:
    """A cpu-scenario row as rows.finish hands it to answer: 10 users, 20 ms of CPU each."""
    row = {
        "users": 10,
        "rps": 50.0,
        "with_identity": 500,
        "error": "",
        "cpu_count": 2,
        "pids": 1,
        "threads": 10,
        "max_threads_per_pid": 10,
        "max_in_flight": 10,
        "capacity": 10,
        "lane_kind": "thread",
        "cpu_ms_mean": 20.3,
        "app_ms_mean": 190.0,
        "wall_per_cpu": 190.0 / 20.3,
        "request_cores": 1.0,
        "server_cpu_cores": 1.0,
        "interpreter": {"implementation": "cpython", "version": "3.12.8", "gil_enabled": True},
    }
    return {**row, **over}


def test_threads_taking_turns_on_the_gil_are_named_with_their_figures():
    sentence = answer("lab-threaded", "cpu", cpu_row())
    assert "10 in flight), but together they used 1.0 core" in sentence
    assert "each 20 ms of CPU took 190 ms inside the app -- the threads took turns on one GIL" in sentence


def test_a_gil_disabled_row_gets_no_gil_sentence():
    python = {"implementation": "cpython", "version": "3.14.0", "gil_enabled": False}
    sentence = answer("lab-threaded", "cpu", cpu_row(interpreter=python))
    assert "GIL" not in sentence and "took turns" not in sentence


def test_processes_on_their_own_cores_say_so():
    row = cpu_row(
        pids=2, threads=2, max_threads_per_pid=1, max_in_flight=2, capacity=2, cpu_ms_mean=20.1,
        app_ms_mean=21.0, wall_per_cpu=21.0 / 20.1, request_cores=1.9,
    )  # fmt: skip
    sentence = answer("lab-forking", "cpu", row)
    assert "each process ran on its own core" in sentence and "GIL" not in sentence
    assert "together they used 1.9 cores: each 20 ms of CPU took 21 ms" in sentence


def test_io_bound_and_sub_millisecond_rows_make_no_turn_taking_claim():
    io = cpu_row(cpu_ms_mean=0.4, app_ms_mean=500.0, wall_per_cpu=1250.0, request_cores=0.01)
    hello = cpu_row(cpu_ms_mean=0.08, app_ms_mean=0.9, wall_per_cpu=11.0, request_cores=0.9)
    for row in (io, hello):
        sentence = answer("lab-threaded", "io", row)
        assert "took turns" not in sentence and "GIL" not in sentence


def test_greenlets_are_called_greenlets_not_threads():
    sentence = answer("gunicorn-gevent", "cpu", cpu_row(lane_kind="greenlet"))
    assert sentence.startswith("gunicorn-gevent: 1 process, 10 greenlets on one OS thread --")
    assert "10 threads" not in sentence and "GIL" not in sentence
    assert "the greenlets took turns on one OS thread" in sentence


def test_facts_carry_each_requests_cpu_and_lane_kind():
    records = [{**rec("1", "T1", 0.0, 0.2), "cpu_ms": "20.0", "lane_kind": "thread"}]
    records.append({**rec("1", "T2", 0.0, 0.1), "cpu_ms": "10.0", "lane_kind": "thread"})
    records.append({**rec("1", "T3", 0.0, 0.1), "cpu_ms": None})  # a server that did not say
    got = evidence.facts(records)
    assert got["cpu_ms_mean"] == pytest.approx(15.0) and got["app_ms_mean"] == pytest.approx(150.0)
    assert got["wall_per_cpu"] == pytest.approx(10.0) and got["lane_kind"] == "thread"


def test_on_a_machine_full_of_other_work_the_gil_sentence_says_part_of_the_wait_was_for_a_core():
    """Measured so on 2 busy cores: lab-threaded's 10 threads got 0.47 core in all."""
    busy = {"machine_cpu": 1.0, "per_round": [{"server_cpu_cores": 0.51, "generator_cores": 0.03}]}
    threaded = cpu_row(request_cores=0.47, app_ms_mean=321.0, wall_per_cpu=321.0 / 20.4, **busy)
    sentence = answer("lab-threaded", "cpu", threaded)
    assert "together they used 0.5 cores: each 20 ms of CPU took 321 ms inside the app" in sentence
    assert "the threads took turns on one GIL (other work kept 100% of the machine's cores busy" in sentence
    io = cpu_row(cpu_ms_mean=0.3, app_ms_mean=500.0, wall_per_cpu=1666.0, request_cores=0.006, **busy)
    assert "took turns" not in answer("lab-threaded", "io", io)


def test_greenlets_that_never_shared_the_app_did_not_take_turns_there():
    """Measured so (gunicorn-gevent, cpu, busy machine): /cpu never yields, so one request at a time
    was inside the app, and its 21 ms of CPU took 95 ms because the machine gave the process 0.2 core."""
    row = cpu_row(lane_kind="greenlet", max_in_flight=1, cpu_ms_mean=21.0, app_ms_mean=95.0,
                  wall_per_cpu=95.0 / 21.0, request_cores=0.22, machine_cpu=1.0,
                  per_round=[{"server_cpu_cores": 0.23, "generator_cores": 0.05}])  # fmt: skip
    sentence = answer("gunicorn-gevent", "cpu", row)
    assert "at most 1 in flight" in sentence and "took turns" not in sentence
