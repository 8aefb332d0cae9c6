"""The figures of one measured run (a round), from our own per-request records.

Policy, stated once:

- Warm-up: the first ``warmup_s`` seconds after the first request was sent are
  dropped -- requests *completing* before then do not count, and the CPU samples
  of the server and the generator are taken over the same window.
- The measured window ends one longest-request before the last response: when
  locust stops, each user's request in flight is dropped unrecorded, so only up
  to there does every user have records covering the time.
- Throughput counts each request by the share of its duration inside the window
  (errors included, as locust counts them), divided by the window's length.  A
  closed-loop user's requests tile time, so this counts the requests' periods
  exactly, wherever the window's edges fall; counting whole completions would
  gain or lose a whole burst when users finish in step (every io request
  sleeps the same time), a 10% error on a 4 s window at 10 users.
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

from loadtest import evidence, stats
from loadtest.catalog import ERROR_KINDS

MIN_WINDOW_S = 0.5


def completed(record: dict) -> float:
    return float(record["t"]) + float(record["ms"]) / 1000.0


def window(records: Sequence[dict], warmup_s: float) -> tuple[tuple[float, float] | None, str]:
    """(start, end) of the measured window and a note when a short run forced a looser one.

    Runs too short for the policy's window fall back to ending at the last
    response, then to keeping the warm-up; under MIN_WINDOW_S of either: None.
    """
    timed = [r for r in records if r.get("t") is not None and r.get("ms") is not None]
    if not timed:
        return None, ""
    first = min(float(r["t"]) for r in timed)
    last = max(completed(r) for r in timed)
    longest = max(float(r["ms"]) for r in timed) / 1000.0
    candidates = (
        ((first + warmup_s, last - longest), ""),
        ((first + warmup_s, last), "short run: window ends at the last response"),
        ((first, last), "short run: warm-up kept in the window"),
    )
    for span, note in candidates:
        if span[1] - span[0] >= MIN_WINDOW_S:
            return span, note
    return None, ""


def requests_in(records: Sequence[dict], span: tuple[float, float]) -> float:
    """Requests in ``span``, each counted by the share of its duration inside it."""
    total = 0.0
    for r in records:
        begin, end = float(r["t"]), completed(r)
        if end <= begin:
            total += 1.0 if span[0] <= end <= span[1] else 0.0
            continue
        total += max(min(end, span[1]) - max(begin, span[0]), 0.0) / (end - begin)
    return total


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


def figures(records: Sequence[dict], warmup_s: float) -> dict:
    """Throughput, exact latency percentiles, errors and identity facts of one run."""
    span, note = window(records, warmup_s)
    if span is None:
        return {"error": f"under {MIN_WINDOW_S:g} s of responses after the {warmup_s:g} s warm-up"}
    measured = inside(records, span)
    seconds = span[1] - span[0]
    latencies = [float(r["ms"]) for r in measured]
    timed = [r for r in records if r.get("t") is not None and r.get("ms") is not None]
    rps = requests_in(timed, span) / seconds
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
        **{k: v for k, v in evidence.facts(measured).items() if k != "requests"},
    }
