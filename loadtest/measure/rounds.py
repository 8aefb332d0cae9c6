"""The figures of one measured run (a round), from our own per-request records.

Policy, stated once:

- Warm-up: the first ``warmup_s`` seconds after the first request was sent are
  dropped -- requests *completing* before then do not count, and the CPU samples
  of the server and the generator are taken over the same window.
- The measured window ends when the last response arrived.
- Throughput is measured in whole cycles of each user, so that where the
  window's edges fall does not matter: a user (one closed loop, the ``user``
  field) that completed n requests in the window between its first and last
  completion ran n - 1 whole request cycles in that time, and the rate is the
  users times the cycles per user-second, summed over users
  (:func:`whole_cycles`).  Counting
  completions over the window would gain or lose a whole burst -- 10% on a 4 s
  window at 10 users.  The rate between completions of all users together
  (:func:`between_completions`, used only for records without a user or when
  no user completed twice in the window) relies on telling bursts apart, and a burst
  whose completions are spread wider than its gap rule lets part of the last
  burst count while the time stops at its start: 10-20% high on a 3 s run of
  10 users sleeping 0.5 s with 20-50 ms of jitter (``tests/loadtest/measure/test_rounds.py``).
  Averaging 1/gap per user would read high when users queue (irregular gaps).
  No rate at all (the round is an error) when no user completed twice and the
  completions span under ``MIN_WINDOW_S``: one burst is not a rate.
- Latency: exact percentiles (``stats.percentile``) of the client-side times of
  every request completed in the window -- not locust's rounded buckets.
- In flight: ``in_flight_measured`` is the mean number of requests inside the app
  (server-side start/end headers, clipped to the window); Little's law predicts
  ``rps * avg_s`` from the client side. They differ by the time requests spend
  outside the app (queued in the socket backlog, on the wire).

Pure functions, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from loadtest.measure import evidence, stats
from loadtest.registry.error_kinds import ERROR_KINDS

MIN_WINDOW_S = 0.5


def completed(record: dict) -> float:
    return float(record["t"]) + float(record["ms"]) / 1000.0


def window(records: Sequence[dict], warmup_s: float) -> tuple[tuple[float, float] | None, str]:
    """(start, end) of the measured window, and a note when the run was too short for the warm-up."""
    timed = [r for r in records if r.get("t") is not None and r.get("ms") is not None]
    if not timed:
        return None, ""
    first = min(float(r["t"]) for r in timed)
    last = max(completed(r) for r in timed)
    if last - (first + warmup_s) >= MIN_WINDOW_S:
        return (first + warmup_s, last), ""
    if last - first >= MIN_WINDOW_S:
        return (first, last), "short run: warm-up kept in the window"
    return None, ""


# Completions closer than this fraction of the mean gap arrived together (one burst).
TOGETHER = 0.25


def between_completions(times: Sequence[float]) -> float | None:
    """Completions per second, from the first completion to the start of the last burst.

    Servers often finish requests in bursts: 10 users in step, or 4 workers
    ending a 0.5 s sleep at the same moment.  Completions closer together than a
    quarter of the mean gap form one burst.  The rate is the number of
    completions before the last burst divided by the time from the first
    completion to the last burst's start: each interval between bursts is
    credited with the burst that opened it.  That is exact for bursts and for
    evenly spaced completions ((n - 1) / span), and a last burst cut short by the
    end of the run does not count.  None for fewer than 2 or a single burst.
    """
    ordered = sorted(times)
    if len(ordered) < 2 or ordered[-1] <= ordered[0]:
        return None
    near = TOGETHER * (ordered[-1] - ordered[0]) / (len(ordered) - 1)
    last = len(ordered) - 1  # index of the first completion of the last burst
    while last > 0 and ordered[last] - ordered[last - 1] <= near:
        last -= 1
    span = ordered[last] - ordered[0]
    return last / span if span >= MIN_WINDOW_S else None


def whole_cycles(done: Sequence[dict]) -> float | None:
    """Users x whole request cycles per user-second: sum(n - 1) / sum(last - first), per user.

    A ratio of sums, not a sum of per-user ratios: a user whose few cycles in
    a short window happen to be short would otherwise read high (1/x is not
    linear).  None when a record has no user or no user completed twice.
    """
    by_user: dict[str, list[float]] = {}
    for r in done:
        if not r.get("user"):
            return None
        by_user.setdefault(str(r["user"]), []).append(completed(r))
    cycles = sum(len(times) - 1 for times in by_user.values())
    seconds = sum(max(times) - min(times) for times in by_user.values())
    return len(by_user) * cycles / seconds if cycles and seconds > 0 else None


def rate(records: Sequence[dict], span: tuple[float, float]) -> float | None:
    """Requests per second over ``span``, in whole cycles per user (see the module's policy).

    None when neither estimate holds: no user completed twice and the completions
    are spread over less than ``MIN_WINDOW_S`` (a run locust cut short delivers
    one burst, which would read as hundreds of requests per second).
    """
    done = inside(records, span)
    whole = whole_cycles(done)
    return whole if whole is not None else between_completions([completed(r) for r in done])


def inside(records: Sequence[dict], span: tuple[float, float]) -> list[dict]:
    return [r for r in records if r.get("t") is not None and span[0] <= completed(r) <= span[1]]


def error_counts(records: Sequence[dict]) -> dict[str, int]:
    """Requests per error kind; a record without a kind that failed counts as ``other``."""
    kinds = Counter(r.get("error") or ("" if r.get("ok") else "other") for r in records)
    return {kind: kinds.get(kind, 0) for kind in ERROR_KINDS}


def mean_in_app(records: Sequence[dict], span: tuple[float, float]) -> float | None:
    """Mean number of requests inside the app over ``span`` (server-side times, clipped)."""
    served = evidence.served(records)
    if not served:
        return None
    busy = sum(max(min(r["end"], span[1]) - max(r["start"], span[0]), 0.0) for r in served)
    return busy / (span[1] - span[0])


def request_cores(measured: Sequence[dict], seconds: float) -> float | None:
    """Cores the requests themselves kept busy: their CPU time (``X-Request-Cpu-Ms``) over the window."""
    cpu = [r["cpu_ms"] for r in evidence.served(measured) if r["cpu_ms"] is not None]
    return sum(cpu) / 1000.0 / seconds if cpu and seconds > 0 else None


def figures(records: Sequence[dict], warmup_s: float) -> dict:
    """Throughput, exact latency percentiles, errors and identity facts of one run."""
    span, note = window(records, warmup_s)
    if span is None:
        return {"error": f"under {MIN_WINDOW_S:g} s of responses after the {warmup_s:g} s warm-up"}
    measured = inside(records, span)
    seconds = span[1] - span[0]
    latencies = [float(r["ms"]) for r in measured]
    timed = [r for r in records if r.get("t") is not None and r.get("ms") is not None]
    rps = rate(timed, span)
    if rps is None:
        return {
            "error": f"completions spread over under {MIN_WINDOW_S:g} s and no user completed twice: "
            "too short for a rate",
            "too_short": True,
        }
    avg = sum(latencies) / len(latencies) if latencies else None
    errors = error_counts(measured)
    return {
        "window": span,
        "window_s": seconds,
        "window_note": note,
        "requests": len(measured),
        "failures": sum(1 for r in measured if not r.get("ok")),
        "errors": errors,
        "rps": rps,
        "p50_ms": stats.percentile(latencies, 50),
        "p95_ms": stats.percentile(latencies, 95),
        "p99_ms": stats.percentile(latencies, 99),
        "avg_ms": avg,
        "in_flight_measured": mean_in_app(measured, span),
        "in_flight_little": rps * avg / 1000.0 if avg is not None else None,
        "request_cores": request_cores(measured, seconds),
        **{k: v for k, v in evidence.facts(measured).items() if k != "requests"},
    }
