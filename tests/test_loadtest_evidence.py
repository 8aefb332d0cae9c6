"""The arithmetic behind the report: in-flight sweep, io ceiling, the one-line answers."""

from __future__ import annotations

import pytest

from loadtest import evidence


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
