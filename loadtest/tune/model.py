"""Predicted capacity and memory of a shape, from one calibration of the app.  Pure.

Capacity (requests/s a shape can take while its latency stays near the app's own):

- slots (Little's law): requests in flight = rate x *mean* time each spends in the
  app, so ``rate <= workers x threads / wall_s`` (a median would hide a slow path
  of a mixed workload: a quarter of requests waiting 100 ms is 25 ms on the mean);
- CPU: ``rate x cpu_s <= cpus`` (the budget's cores);
- the GIL: one process runs Python on at most one core, so
  ``rate x cpu_s <= min(workers, cpus)``.

The smallest of the three, times ``UTILISATION`` (a queue near 100 % busy waits
without bound), is the prediction; the bound that set it is named.  A shape whose
app latency alone misses an objective cannot meet it at any rate ("latency").

Learning: after a shape is measured, ``learn`` corrects the cost behind the bound
that set its prediction (CPU for cpu/gil, the time in the app for slots) for that
target's later predictions -- a shape that beats its prediction lowers the cost,
so the bigger shapes of its family are predicted higher, not left pruned.

Memory: ``base + workers x (worker + (threads - 1) x thread)``; per-connection
shapes hold as many threads as requests in flight at the predicted rate;
``learn_memory`` corrects a target's memory predictions the same way.

What this module does not know: how anything is measured (``calibrate`` makes the
``Calibration`` it reads).
"""

from __future__ import annotations

import math

from loadtest.tune.calibrate import MIN_THREAD_MB, Calibration
from loadtest.tune.candidate import Prediction
from loadtest.tune.candidates import Shape

UTILISATION = 0.8
MIN_COST_SCALE, MAX_COST_SCALE = 0.05, 20.0  # a correction beyond these is a broken measurement


def slots(shape: Shape) -> float | None:
    n = shape.slots
    return None if n is None else float(n)


def capacity(shape: Shape, cal: Calibration, cpus: int) -> tuple[float, str]:
    """(requests/s before the bound, which bound) -- without the utilisation margin."""
    name = shape.family.name
    cpu_s = cal.cpu_s * cal.cost(name, "cpu")
    bounds: list[tuple[float, str]] = [(cpus / cpu_s, "cpu")]
    if shape.workers < cpus:
        bounds.append((shape.workers / cpu_s, "gil"))
    n = slots(shape)
    if n is not None:
        bounds.append((n / (cal.wall_s * cal.cost(name, "wall")), "slots"))
    return min(bounds)


def app_misses(cal: Calibration, limits: dict[float, float]) -> bool:
    """Whether the app's own latency, alone on the server, already misses an objective."""
    return any(cal.app_ms.get(q, cal.wall_s * 1000.0) > ms for q, ms in limits.items())


def memory_mb(shape: Shape, cal: Calibration, in_flight: float) -> float:
    per_worker_now = min(in_flight / shape.workers, shape.cap or math.inf)  # a cap bounds the greenlets
    threads = shape.threads if shape.threads is not None else max(per_worker_now, 1.0)
    per_worker = cal.worker_mb + (threads - 1) * max(cal.thread_mb, MIN_THREAD_MB)
    raw = cal.base_mb + shape.workers * per_worker
    return raw * cal.scale.get(shape.family.name, 1.0)


def predict(shape: Shape, cal: Calibration, cpus: int, limits: dict[float, float]) -> Prediction:
    rate, bound = capacity(shape, cal, cpus)
    rate *= UTILISATION
    if app_misses(cal, limits):
        rate, bound = 0.0, "latency"
    in_flight = rate * cal.wall_s
    return Prediction(rate, bound, memory_mb(shape, cal, in_flight), in_flight)


def learn(
    cal: Calibration, shape: Shape, measured: float, predicted: Prediction, floor: bool
) -> float | None:
    """Correct the target's cost behind ``predicted.bound`` by what the shape measured; the new factor.

    ``floor``: the measured rate is a lower bound (every step passed, or the
    generator's limit), so it may only lower the cost.  Nothing is learnt from a
    shape that met the objectives at no rate, or whose bound was the app's latency.
    """
    if measured <= 0 or predicted.rate <= 0 or predicted.bound == "latency":
        return None
    what = "wall" if predicted.bound == "slots" else "cpu"
    ratio = predicted.rate / measured  # below 1: the shape beat its prediction, the cost was lower
    if floor and ratio > 1:
        return None
    factors = cal.costs.setdefault(shape.family.name, {})
    factors[what] = min(max(factors.get(what, 1.0) * ratio, MIN_COST_SCALE), MAX_COST_SCALE)
    return factors[what]


def learn_memory(cal: Calibration, shape: Shape, measured_mb: float, predicted_mb: float) -> None:
    """Correct the target's later memory predictions by what one of its shapes measured."""
    base = predicted_mb / cal.scale.get(shape.family.name, 1.0)
    if base > 0 and measured_mb > 0:
        cal.scale[shape.family.name] = measured_mb / base
