"""What one request and one worker of the app cost, measured on the budget's cores.

Three short runs, all gunicorn (a dependency of the lab, whatever ``--servers`` says):

1. sync, 1 worker, a ladder of low rates (``RATES``): CPU seconds of the server
   tree per answered request; per path (each ``--path``, each request name of a
   locustfile) the mean wall time and mean CPU time inside the app (the identity
   headers: queueing in the socket does not count), its percentiles and its
   error answers; the workload's figures are the means weighted by the paths'
   shares; and the PSS of one worker plus its arbiter;
2. sync, 3 workers, a few requests: two more workers' PSS -> one worker's, and
   the arbiter's (base) by difference;
3. gthread, 1 worker x ``THREADS`` threads, loaded to keep the threads busy: one
   more thread's PSS.

The app's mean wall time, mean CPU and run-queue wait (the time its threads waited
for a core: a busy machine's, not the app's) give its I/O share (``Calibration.io_share``).
What this module does not know: what the figures predict (``model``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loadtest.measure import evidence, stats
from loadtest.registry import targets
from loadtest.registry.steps import parse_step_name
from loadtest.tune import cpufit, ladder
from loadtest.tune.candidates import Shape, family
from loadtest.tune.ladder import requests_only
from loadtest.tune.trial import Served, Session, app_times_ms, serve_ladder

RATES = [2.0, 5.0, 10.0, 20.0, 40.0]
CALIBRATION_STEP_S = 2.0  # calibration's steps: shorter than a search ladder's (ladder.STEP_S)
THREADS = 16
MAX_THREAD_RATE = 300.0
MIN_WORKER_MB = 1.0
PERCENTILES = (50.0, 95.0, 99.0)
MIN_THREAD_MB = 0.1  # a thread measured below this is noise: predictions count at least this much


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


class CalibrationError(Exception):
    """The app could not be served or answered nothing: reported as one line."""


def cpu_seconds(served: Served) -> float | None:
    samples = served.watch.samples if served.watch else []
    if len(samples) < 2:
        return None
    return max(samples[-1][1] - samples[0][1], 0.0)


def peak_mb(served: Served) -> float | None:
    values = [m[1] for m in served.watch.memory] if served.watch else []
    return max(values) / 1024 / 1024 if values else None


def checked(served: Served, what: str) -> Served:
    if served.error or served.run is None:
        raise CalibrationError(f"calibration ({what}): {served.error or 'no run'}")
    records = requests_only(served.run.records)
    if not any(r.get("ok") for r in records):
        errors = sorted({str(r.get("status") or r.get("error")) for r in records})
        raise CalibrationError(
            f"calibration ({what}): no request succeeded (answers: {', '.join(errors) or 'none'})"
        )
    return served


def path_of(record: dict) -> str:
    """The path (or the locustfile's request name) without the step prefix the generator adds."""
    name = str(record.get("name") or "")
    parsed = parse_step_name(name)
    return parsed[1] if parsed else name


def error_status(record: dict) -> str | None:
    """The HTTP status of an error answer from the app (4xx/5xx), else None.

    An answer the workload expects (a recorded 404, ``--expect-status``) the generator
    counted as a success: no error, whatever its status.
    """
    if record.get("ok"):
        return None
    try:
        status = int(record.get("status") or 0)
    except (TypeError, ValueError):
        return None
    return str(status) if status >= 400 else None


def path_cost(name: str, weight: float, records: Sequence[dict], server_cpu_ms: float) -> PathCost:
    answered = [r for r in records if r.get("ok")]
    wall = app_times_ms(answered) or [float(r["ms"]) for r in answered] or [0.0]
    cpus = [c for c in (evidence.cpu_ms(r) for r in answered) if c is not None]
    wall_mean = sum(wall) / len(wall)
    cpu_mean = sum(cpus) / len(cpus) if cpus else server_cpu_ms
    errors = Counter(s for s in (error_status(r) for r in records) if s is not None)
    return PathCost(
        name=name,
        weight=weight,
        requests=len(records),
        app_ms_mean=wall_mean,
        cpu_ms_mean=min(cpu_mean, wall_mean),
        app_ms={q: stats.percentile(wall, q) or 0.0 for q in PERCENTILES},
        errors=dict(errors),
    )


def path_costs(records: Sequence[dict], weights: dict[str, float], server_cpu_ms: float) -> list[PathCost]:
    """Per path: the workload's own weights where it gave them (``--path``), else the shares seen."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(path_of(r), []).append(r)
    given = {name: weights[name] for name in groups if name in weights}
    total = sum(given.values()) if given else len(records)
    out = []
    for name, group in groups.items():
        share = (given.get(name, 0.0) if given else len(group)) / total
        out.append(path_cost(name, share, group, server_cpu_ms))
    return sorted(out, key=lambda p: -p.weight)


def weighted(paths: Sequence[PathCost], value: Callable[[PathCost], float]) -> float:
    total = sum(p.weight for p in paths) or 1.0
    return sum(p.weight * value(p) for p in paths) / total


KNEE_SHARES = (0.3, 0.6)  # near the knee: these shares of one sync worker's capacity, when above RATES


def knee_rates(cpu_s: float, wall_s: float) -> list[float]:
    """Rates near one sync worker's knee, where the CPU per request holds; [] when RATES reach it."""
    capacity = 1.0 / max(cpu_s, wall_s, 1e-4)
    rates = [min(share * capacity, MAX_THREAD_RATE * 2) for share in KNEE_SHARES]
    return rates if rates[0] > RATES[-1] else []


def per_request_cpu(served: Served, answered: list[dict], in_app: list[float], points) -> float:
    """The fitted slope (``cpufit``) where the steps give one, else the run's CPU over its answers."""
    fitted = cpufit.fit(points)
    if fitted is not None:
        return max(fitted.cpu_s, 1e-5)
    cpu = cpu_seconds(served)
    return max(cpu / len(answered), 1e-5) if cpu is not None else sum(in_app) / len(in_app) / 1000.0


def calibrate(session: Session, say: Callable[[str], None]) -> Calibration:
    sync, gthread = family(targets.TARGETS["gunicorn-sync"]), family(targets.TARGETS["gunicorn-gthread"])
    say("calibrate 1/3: gunicorn sync, 1 worker, low rates: CPU and time per request, a worker's memory")
    one = checked(serve_ladder(session, Shape(sync, 1, 1), RATES, CALIBRATION_STEP_S), "1 worker")
    assert one.run is not None and one.watch is not None
    by_step = ladder.by_step(one.run.records)
    # the means leave out the cold start (the warm-up step); the CPU per request is the slope of
    # the server's cores over the steps' rates, so idle work is not charged to the few requests
    records = cpufit.warm(by_step, ladder.WARMUP_STEPS) or requests_only(one.run.records)
    answered = [r for r in records if r.get("ok")]
    in_app = app_times_ms(answered) or [float(r["ms"]) for r in answered]
    points = cpufit.points(by_step, ladder.WARMUP_STEPS, one.watch.cores)
    cpu_s = per_request_cpu(one, answered, in_app, points)
    knee = knee_rates(cpu_s, sum(in_app) / len(in_app) / 1000.0)
    if knee:
        say(f"calibrate 1/3 (near the knee): gunicorn sync, 1 worker at {knee[0]:.0f}-{knee[-1]:.0f} req/s")
        near = serve_ladder(session, Shape(sync, 1, 1), knee, CALIBRATION_STEP_S)
        if near.run is not None and near.watch is not None and not near.error:
            points += cpufit.points(ladder.by_step(near.run.records), ladder.WARMUP_STEPS, near.watch.cores)
            cpu_s = per_request_cpu(one, answered, in_app, points)
    paths = path_costs(records, dict(session.paths), cpu_s * 1000.0)
    wall_s = max(weighted(paths, lambda p: p.app_ms_mean) / 1000.0, 1e-6)
    app_cpu_s = weighted(paths, lambda p: p.cpu_ms_mean) / 1000.0
    # the whole tree cannot use less CPU per request than the app's own code did: a fit below it is noise
    cpu_s = max(cpu_s, app_cpu_s)
    app_ms = {q: stats.percentile(in_app, q) or 0.0 for q in PERCENTILES}
    queue_s = one.runqueue_s / len(answered) if one.runqueue_s is not None else 0.0
    mem1 = peak_mb(one) or 0.0
    stop = app_errors(paths, session.slo.max_error_rate)
    if stop:  # no shape fixes the app's own errors: nothing more to spend the budget on
        return Calibration(cpu_s, wall_s, app_ms, mem1, 0.0, 0.0, queue_s=queue_s, app_cpu_s=app_cpu_s,
                           paths=paths, app_errors=stop)  # fmt: skip

    say("calibrate 2/3: gunicorn sync, 3 workers: memory of a worker process")
    three = checked(serve_ladder(session, Shape(sync, 3, 1), [5.0], CALIBRATION_STEP_S), "3 workers")
    worker = max(((peak_mb(three) or mem1) - mem1) / 2.0, MIN_WORKER_MB)

    say(f"calibrate 3/3: gunicorn gthread, 1 worker x {THREADS} threads, busy: memory of a thread")
    rate = min(THREADS / max(wall_s, 1e-3) * 0.7, 0.8 / cpu_s, MAX_THREAD_RATE)
    threads = checked(
        serve_ladder(session, Shape(gthread, 1, THREADS), [rate], CALIBRATION_STEP_S * 1.5), "threads"
    )
    thread = max(((peak_mb(threads) or mem1) - mem1) / (THREADS - 1), MIN_THREAD_MB)
    return Calibration(
        cpu_s=cpu_s,
        wall_s=wall_s,
        app_ms=app_ms,
        base_mb=max(mem1 - worker, 0.0),
        worker_mb=worker,
        thread_mb=thread,
        queue_s=queue_s,
        app_cpu_s=app_cpu_s,
        paths=paths,
    )
