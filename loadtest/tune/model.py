"""Predicted capacity and memory of a shape, from one calibration of the app.  Pure.

Capacity (requests/s a shape can take while its latency stays near the app's own):

- slots (Little's law): requests in flight = rate x time each spends in the app,
  so ``rate <= workers x threads / wall_s``;
- CPU: ``rate x cpu_s <= cpus`` (the budget's cores);
- the GIL: one process runs Python on at most one core, so
  ``rate x cpu_s <= min(workers, cpus)``.

The smallest of the three, times ``UTILISATION`` (a queue near 100 % busy waits
without bound), is the prediction; the bound that set it is named.  A shape whose
app latency alone misses an objective cannot meet it at any rate ("latency").

Memory: ``base + workers x (worker + (threads - 1) x thread)``; per-connection
shapes hold as many threads as requests in flight at the predicted rate.  After a
shape of a target is measured, ``Calibration.scale`` corrects that target's later
predictions by measured / predicted (another server's process costs differ).

What this module does not know: how anything is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtest.tune.candidates import Shape

UTILISATION = 0.8
MIN_THREAD_MB = 0.1


@dataclass
class Calibration:
    """What one request and one worker of the app cost, measured by ``calibrate``."""

    cpu_s: float  # server CPU seconds per request
    wall_s: float  # seconds a request spends in the app (median, alone)
    app_ms: dict[float, float]  # percentile -> ms of the app's own time, requests alone
    base_mb: float  # the server's parent (arbiter) and shared pages
    worker_mb: float  # one more worker process
    thread_mb: float  # one more thread in a worker
    scale: dict[str, float] = field(default_factory=dict)  # target -> measured / predicted memory
    queue_s: float = 0.0  # seconds per request the server waited for a core (machine busy), not I/O

    @property
    def io_share(self) -> float:
        """Share of a request's wall time spent waiting on I/O (not on a core, nor for one): 0 = CPU-bound."""
        if self.wall_s <= 0:
            return 0.0
        return max(0.0, min(1.0, 1.0 - (self.cpu_s + self.queue_s) / self.wall_s))


@dataclass(frozen=True)
class Prediction:
    rate: float  # req/s at the objectives (0 when the app alone misses them)
    bound: str  # "slots" | "cpu" | "gil" | "latency"
    memory_mb: float
    in_flight: float


def slots(shape: Shape) -> float | None:
    return None if shape.threads is None else float(shape.workers * shape.threads)


def capacity(shape: Shape, cal: Calibration, cpus: int) -> tuple[float, str]:
    """(requests/s before the bound, which bound) -- without the utilisation margin."""
    bounds: list[tuple[float, str]] = [(cpus / cal.cpu_s, "cpu")]
    if shape.workers < cpus:
        bounds.append((shape.workers / cal.cpu_s, "gil"))
    n = slots(shape)
    if n is not None:
        bounds.append((n / cal.wall_s, "slots"))
    return min(bounds)


def app_misses(cal: Calibration, limits: dict[float, float]) -> bool:
    """Whether the app's own latency, alone on the server, already misses an objective."""
    return any(cal.app_ms.get(q, cal.wall_s * 1000.0) > ms for q, ms in limits.items())


def memory_mb(shape: Shape, cal: Calibration, in_flight: float) -> float:
    threads = shape.threads if shape.threads is not None else max(in_flight / shape.workers, 1.0)
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


def learn_memory(cal: Calibration, shape: Shape, measured_mb: float, predicted_mb: float) -> None:
    """Correct the target's later memory predictions by what one of its shapes measured."""
    base = predicted_mb / cal.scale.get(shape.family.name, 1.0)
    if base > 0 and measured_mb > 0:
        cal.scale[shape.family.name] = measured_mb / base
