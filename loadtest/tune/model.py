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

What this module does not know: how anything is measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loadtest.tune.candidates import Shape

UTILISATION = 0.8
MIN_THREAD_MB = 0.1
MIN_COST_SCALE, MAX_COST_SCALE = 0.05, 20.0  # a correction beyond these is a broken measurement


@dataclass(frozen=True)
class PathCost:
    """One path (or locustfile request name) of the workload, measured alone at low rates."""

    name: str
    weight: float  # share of the workload's requests (sums to 1 over the paths)
    requests: int
    app_ms_mean: float  # wall time inside the app
    cpu_ms_mean: float  # the request's own CPU time inside the app (never above its wall time)
    app_ms: dict[float, float]  # percentile -> ms inside the app
    errors: dict[str, int] = field(default_factory=dict)  # HTTP status -> count of error answers


@dataclass
class Calibration:
    """What one request and one worker of the app cost, measured by ``calibrate``."""

    cpu_s: float  # server CPU seconds per request (the whole tree: the server's own work included)
    wall_s: float  # mean seconds a request spends in the app, weighted over the workload's paths
    app_ms: dict[float, float]  # percentile -> ms of the app's own time over the workload
    base_mb: float  # the server's parent (arbiter) and shared pages
    worker_mb: float  # one more worker process
    thread_mb: float  # one more thread in a worker
    scale: dict[str, float] = field(default_factory=dict)  # target -> measured / predicted memory
    queue_s: float = 0.0  # seconds per request the server waited for a core (machine busy), not I/O
    app_cpu_s: float | None = None  # mean CPU seconds inside the app (None: the server's cpu_s stands in)
    paths: list[PathCost] = field(default_factory=list)
    costs: dict[str, dict[str, float]] = field(default_factory=dict)  # target -> {"cpu"|"wall": factor}
    app_errors: str = ""  # why the app's own errors end the run after calibration (``app_errors``)

    @property
    def in_app_cpu_s(self) -> float:
        """Mean CPU inside the app, never above the mean wall time (what is printed and judged)."""
        cpu = self.app_cpu_s if self.app_cpu_s is not None else self.cpu_s
        return min(cpu, self.wall_s)

    @property
    def io_share(self) -> float:
        """1 - mean CPU / mean wall time in the app, run-queue wait not counted as I/O; within [0, 1]."""
        if self.wall_s <= 0:
            return 0.0
        return max(0.0, min(1.0, 1.0 - (self.in_app_cpu_s + self.queue_s) / self.wall_s))

    def cost(self, target: str, what: str) -> float:
        return self.costs.get(target, {}).get(what, 1.0)


@dataclass(frozen=True)
class Prediction:
    rate: float  # req/s at the objectives (0 when the app alone misses them)
    bound: str  # "slots" | "cpu" | "gil" | "latency"
    memory_mb: float
    in_flight: float


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


MIN_ERROR_EVIDENCE = 3  # error answers needed before the app's own errors end a run (one may be a fluke)


def app_errors(paths: list[PathCost], max_error_rate: float) -> str:
    """Why the app's own error answers, seen alone at low rates, already miss the error budget; else "".

    No server shape fixes an app that answers errors by itself: the search would
    spend the budget measuring them.
    """
    errors = sum(sum(p.errors.values()) for p in paths)
    total = sum(p.requests for p in paths)
    if total == 0 or errors < MIN_ERROR_EVIDENCE or errors / total <= max_error_rate:
        return ""
    where = "; ".join(
        f"{p.name}: " + ", ".join(f"{n} x {status}" for status, n in sorted(p.errors.items()))
        for p in paths
        if p.errors
    )
    return (
        f"the app's own errors: {errors} of {total} answers ({errors / total:.1%}) were errors with the "
        f"app alone at low rates ({where}), over the error budget of {max_error_rate:.2%}"
    )
