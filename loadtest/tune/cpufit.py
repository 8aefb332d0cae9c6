"""The server's CPU per request as idle work plus a cost per request, fitted over several rates.  Pure.

Dividing a low-rate run's CPU by its requests charges the server's idle work (an
arbiter's loop, heartbeats, a worker's timers) and its cold start to the few
requests there were: 2.38 ms calibrated where the same server could have used at
most 1.37 ms at 731 req/s.  Over steps of different rates the server's cores follow
``cores = idle + rate x cpu_s``; the slope is the cost of one more request, which is
what a capacity model multiplies by the rate.  The steps passed in leave out the
warm-up step (a just-started server).

What this module does not know: how the steps were measured (``calibrate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

MIN_POINTS = 3  # fewer steps than this cannot separate a slope from noise
MIN_SPREAD = 2.0  # the fastest step at least this many times the slowest: rates far enough apart


@dataclass(frozen=True)
class Fit:
    idle_cores: float  # what the server uses with no request (the intercept, at least 0)
    cpu_s: float  # CPU seconds per request (the slope)
    points: int


def fit(points: Sequence[tuple[float, float]]) -> Fit | None:
    """Least squares over ``(answered requests/s, server cores)``; None when the points cannot say.

    None: too few points, rates too close together, or a slope that is not
    positive (noise larger than the requests' own cost) -- the caller then keeps
    the plain division.  A negative intercept is noise: the line is refitted
    through the origin (no idle work).
    """
    usable = [(r, c) for r, c in points if r > 0 and c >= 0]
    if len(usable) < MIN_POINTS:
        return None
    rates = [r for r, _ in usable]
    if max(rates) < MIN_SPREAD * min(rates):
        return None
    n = len(usable)
    mean_r = sum(rates) / n
    mean_c = sum(c for _, c in usable) / n
    sxx = sum((r - mean_r) ** 2 for r in rates)
    slope = sum((r - mean_r) * (c - mean_c) for r, c in usable) / sxx
    idle = mean_c - slope * mean_r
    if idle < 0:
        slope, idle = sum(r * c for r, c in usable) / sum(r * r for r in rates), 0.0
    if slope <= 0:
        return None
    return Fit(idle_cores=idle, cpu_s=slope, points=n)


def warm(by_step: dict[int, list[dict]], warmup_steps: int) -> list[dict]:
    """The records of the judged steps: a cold start (the warm-up steps' first requests) left out.

    A just-started app's first requests import, compile and fill caches: a Flask app with no
    I/O at all read "waiting 52 %" (p50 1.5 ms, p99 55.6 ms) from them.
    """
    return [r for step, records in sorted(by_step.items()) if step >= warmup_steps for r in records]


def points(
    by_step: dict[int, list[dict]],
    warmup_steps: int,
    cores: Callable[[float, float], float | None],
) -> list[tuple[float, float]]:
    """(answered requests/s, server cores) per judged step, from its records' time span and ``cores``."""
    out = []
    for step, records in sorted(by_step.items()):
        times = [float(r["t"]) for r in records if r.get("t") is not None]
        if step < warmup_steps or len(times) < 2:
            continue
        start, end = min(times), max(times)
        used = cores(start, end)
        answered = sum(1 for r in records if r.get("ok"))
        if used is not None and end > start:
            out.append((answered / (end - start), used))
    return out
