"""A round's figures from synthetic per-request records: rates, windows, errors, Little's law."""

from __future__ import annotations

import pytest

from loadtest.measure import rounds


def closed_loop(users: int, seconds: float, each_s: float, t0: float = 1000.0) -> list[dict]:
    """``users`` closed loops in step, ``each_s`` per request, for ``seconds``; the last in flight is lost."""
    records = []
    for u in range(users):
        t = t0
        while t + each_s <= t0 + seconds:
            records.append(
                {
                    "t": t,
                    "ms": each_s * 1000,
                    "ok": True,
                    "user": f"1.{u}",
                    "pid": "7",
                    "thread": f"T{u}",
                    "start": t + 0.001,
                    "end": t + each_s - 0.001,
                    "status": 200,
                    "error": "",
                }
            )
            t += each_s
    return records


@pytest.mark.parametrize("seconds", [5.0, 5.1, 5.25, 5.4])
def test_rate_of_users_in_step_is_exact_wherever_the_window_ends(seconds):
    """10 users, 0.5 s each: 20 req/s, though completions come in bursts of 10."""
    got = rounds.figures(closed_loop(10, seconds, 0.5), warmup_s=1.0)
    assert got["rps"] == pytest.approx(20.0, rel=1e-6)
    assert got["p50_ms"] == pytest.approx(500.0)


def fifo(users: int, service_s: float, until: float, t0: float = 1000.0) -> list[dict]:
    """One request at a time, ``service_s`` each, ``users`` closed loops queued in turn."""
    records = []
    for u in range(users):  # user u's requests complete at service_s * (u + 1) + users * service_s * k
        sent, done = t0, t0 + service_s * (u + 1)
        while done <= until:
            records.append({"t": sent, "ms": (done - sent) * 1000, "ok": True, "user": f"1.{u}"})
            sent, done = done, done + users * service_s
    return records


@pytest.mark.parametrize("until", [1020.0, 1011.0])
def test_queued_users_rate_is_the_servers_not_the_windows(until):
    """0.5 s per request, 10 users: each waits 5 s, the server does 2 req/s -- also when the
    window is shorter than one user's wait (each user completes at most one request in it)."""
    got = rounds.figures(fifo(10, 0.5, until), warmup_s=5.5)  # past the first 5 s, while the queue fills
    assert got["rps"] == pytest.approx(2.0, rel=0.02)


def pool(workers: int, users: int, service_s: float, until: float, t0: float = 1000.0) -> list[dict]:
    """``workers`` one-at-a-time workers, ``users`` closed loops queued FIFO; workers finish in step."""
    records, queue = [], [(t0, f"1.{u}") for u in range(users)]  # (sent, user), in arrival order
    free = [t0 + i * 0.002 for i in range(workers)]  # a few ms apart, as real processes are
    while queue:
        queue.sort()
        sent, user = queue.pop(0)
        w = min(range(workers), key=free.__getitem__)
        done = max(free[w], sent) + service_s
        if done > until:
            break
        free[w] = done
        records.append({"t": sent, "ms": (done - sent) * 1000, "ok": True, "user": user})
        queue.append((done, user))
    return records


@pytest.mark.parametrize("until", [1004.0, 1004.2, 1005.0, 1006.3])
def test_a_pool_finishing_in_bursts_is_not_overcounted(until):
    """4 workers, 10 users, 0.5 s each: 8 req/s, completions in bursts of 4. On windows short enough
    that some user completes once, the server's completions are counted: its first burst opens the
    span and is not counted in it (counting it gave 9.9 req/s on a 3 s window)."""
    got = rounds.figures(pool(4, 10, 0.5, until), warmup_s=1.0)
    assert got["rps"] == pytest.approx(8.0, rel=0.03)


def test_little_law_and_in_flight_inside_the_app():
    got = rounds.figures(closed_loop(4, 6.0, 0.2), warmup_s=1.0)
    assert got["in_flight_little"] == pytest.approx(4.0, rel=0.01)
    assert got["in_flight_measured"] == pytest.approx(4.0 * 0.198 / 0.2, rel=0.02)
    assert got["max_in_flight"] == 4 and got["pids"] == 1 and got["threads"] == 4


def test_errors_are_counted_by_kind_and_as_failures():
    records = closed_loop(2, 4.0, 0.1)
    for i, r in enumerate(records):
        if i % 4 == 0:
            r.update(ok=False, status=None, error="connection_reset", start=None, end=None)
        elif i % 4 == 1:
            r.update(ok=False, status=503, error="non_2xx")
    got = rounds.figures(records, warmup_s=1.0)
    assert got["errors"]["connection_reset"] > 0 and got["errors"]["non_2xx"] > 0
    assert got["failures"] == got["errors"]["connection_reset"] + got["errors"]["non_2xx"]
    assert got["errors"]["timeout"] == got["errors"]["other"] == 0


def test_a_record_without_a_kind_that_failed_counts_as_other():
    assert rounds.error_counts([{"ok": False}, {"ok": True}])["other"] == 1


def test_short_runs_keep_the_warm_up_and_say_so():
    got = rounds.figures(closed_loop(2, 1.2, 0.1), warmup_s=1.0)
    assert got["window_note"].startswith("short run") and got["rps"] == pytest.approx(20.0, rel=0.01)
    assert "error" in rounds.figures(closed_loop(1, 0.3, 0.1), warmup_s=1.0)
    assert "error" in rounds.figures([], warmup_s=1.0)


def jittered(users: int, sleep_s: float, jitter_s: float, seconds: float, t0: float = 1000.0) -> list[dict]:
    """Closed loops of ``sleep_s`` plus a spread of up to ``jitter_s``, different for every request."""
    records = []
    for u in range(users):
        t, k = t0, 0
        while True:
            each = sleep_s + jitter_s * ((u * 7 + k * 3) % 10) / 9
            if t + each > t0 + seconds:
                break
            records.append({"t": t, "ms": each * 1000, "ok": True, "user": f"1.{u}"})
            t, k = t + each, k + 1
    return records


def true_rate(records: list[dict]) -> float:
    """What the users really did: per user, requests over the time they took, summed."""
    by_user: dict[str, list[float]] = {}
    for r in records:
        by_user.setdefault(r["user"], []).append(r["ms"] / 1000)
    return sum(len(each) / sum(each) for each in by_user.values())


@pytest.mark.parametrize("jitter_s", [0.0, 0.02, 0.05])
def test_a_short_run_of_loose_bursts_is_not_overcounted(jitter_s):
    """10 users sleeping 0.5 s, 3 s run: completions come in bursts spread by the jitter. Counting
    between the bursts of all users let part of the last burst count (up to 120% of the truth);
    each user's whole cycles do not."""
    records = jittered(10, 0.5, jitter_s, 3.0)
    got = rounds.figures(records, warmup_s=1.0)
    assert got["rps"] == pytest.approx(true_rate(records), rel=0.03)
    assert got["rps"] <= 20.0 * 1.01  # never above the ceiling of 10 slots / 0.5 s


def test_between_completions_is_what_overshot_on_loose_bursts():
    """The cause, shown on the same records: the burst rule sees part of the last burst as separate."""
    records = jittered(10, 0.5, 0.05, 3.0)
    span, _ = rounds.window(records, 1.0)
    done = rounds.inside(records, span)
    assert rounds.between_completions([rounds.completed(r) for r in done]) > 1.05 * true_rate(records)
    assert rounds.whole_cycles(done) == pytest.approx(true_rate(records), rel=0.03)


def test_request_cores_add_up_the_requests_own_cpu():
    records = closed_loop(4, 6.0, 0.2)
    for r in records:
        r["cpu_ms"] = 20.0
    got = rounds.figures(records, warmup_s=1.0)
    assert got["request_cores"] == pytest.approx(4 * 0.020 / 0.2, rel=0.05)
    assert got["cpu_ms_mean"] == pytest.approx(20.0)
    assert got["wall_per_cpu"] == pytest.approx(198 / 20, rel=0.01)


def test_one_burst_is_not_a_rate():
    """A run locust cut short (measured: 0.8 s of 4 s on a busy machine): 10 users each completed once,
    all within 45 ms -- counted between completions that read 176 req/s against a ceiling of 20."""
    records = [{"t": 1000.0, "ms": 560.0 + 5.0 * u, "ok": True, "user": f"1.{u}"} for u in range(10)]
    got = rounds.figures(records, warmup_s=1.0)
    assert got.get("too_short") and "too short for a rate" in got["error"]
