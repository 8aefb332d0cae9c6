"""What one request and one worker of the app cost, measured on the budget's cores.

Three short runs, all gunicorn (a dependency of the lab, whatever ``--servers`` says):

1. sync, 1 worker, a ladder of low rates (``RATES``): CPU seconds of the server
   tree per answered request, the time each request spent inside the app (the
   identity headers' start/end: queueing in the socket does not count), the
   app's own percentiles, and the PSS of one worker plus its arbiter;
2. sync, 3 workers, a few requests: two more workers' PSS -> one worker's, and
   the arbiter's (base) by difference;
3. gthread, 1 worker x ``THREADS`` threads, loaded to keep the threads busy: one
   more thread's PSS.

The app's wall time, CPU and run-queue wait (the time its threads waited for a
core: a busy machine's, not the app's) give its I/O share (``Calibration.io_share``).
What this module does not know: what the figures predict (``model``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from loadtest import targets
from loadtest.measure import stats
from loadtest.tune.candidates import Shape, family
from loadtest.tune.ladder import requests_only
from loadtest.tune.measure import Served, Session, app_times_ms, serve_ladder
from loadtest.tune.model import MIN_THREAD_MB, Calibration

RATES = [2.0, 5.0, 10.0, 20.0, 40.0]
STEP_S = 2.0
THREADS = 16
MAX_THREAD_RATE = 300.0
MIN_WORKER_MB = 1.0


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


def calibrate(session: Session, say: Callable[[str], None]) -> Calibration:
    sync, gthread = family(targets.TARGETS["gunicorn-sync"]), family(targets.TARGETS["gunicorn-gthread"])
    say("calibrate 1/3: gunicorn sync, 1 worker, low rates: CPU and time per request, a worker's memory")
    one = checked(serve_ladder(session, Shape(sync, 1, 1), RATES, STEP_S), "1 worker")
    assert one.run is not None
    answered = [r for r in requests_only(one.run.records) if r.get("ok")]
    in_app = app_times_ms(answered) or [float(r["ms"]) for r in answered]
    wall_s = statistics.median(in_app) / 1000.0
    cpu = cpu_seconds(one)
    cpu_s = max(cpu / len(answered), 1e-5) if cpu is not None else wall_s
    app_ms = {q: stats.percentile(in_app, q) or 0.0 for q in (50.0, 95.0, 99.0)}
    queue_s = one.runqueue_s / len(answered) if one.runqueue_s is not None else 0.0
    mem1 = peak_mb(one) or 0.0

    say("calibrate 2/3: gunicorn sync, 3 workers: memory of a worker process")
    three = checked(serve_ladder(session, Shape(sync, 3, 1), [5.0], STEP_S), "3 workers")
    worker = max(((peak_mb(three) or mem1) - mem1) / 2.0, MIN_WORKER_MB)

    say(f"calibrate 3/3: gunicorn gthread, 1 worker x {THREADS} threads, busy: memory of a thread")
    rate = min(THREADS / max(wall_s, 1e-3) * 0.7, 0.8 / cpu_s, MAX_THREAD_RATE)
    threads = checked(serve_ladder(session, Shape(gthread, 1, THREADS), [rate], STEP_S * 1.5), "threads")
    thread = max(((peak_mb(threads) or mem1) - mem1) / (THREADS - 1), MIN_THREAD_MB)
    return Calibration(cpu_s, wall_s, app_ms, max(mem1 - worker, 0.0), worker, thread, queue_s=queue_s)
