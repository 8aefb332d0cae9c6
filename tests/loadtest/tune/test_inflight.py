"""``--max-in-flight``: shapes above the limit are capped where the server has a knob, else pruned."""

from __future__ import annotations

from dataclasses import replace

from loadtest.registry import targets
from loadtest.tune import candidate, ladder, waits
from loadtest.tune.calibrate import Calibration
from loadtest.tune.candidates import baseline, family, fit, limit_summary, neighbours, shapes
from loadtest.tune.model import predict
from tests.tune_calibrations import CPU, IO


def fam(name: str, limit: int | None = 4):
    return family(targets.TARGETS[name], limit)


def test_threads_above_the_limit_are_pruned():
    found = shapes(fam("gunicorn-gthread"), 8)
    assert found and all(s.slots is not None and s.slots <= 4 for s in found)
    assert {(s.workers, s.threads) for s in found} == {(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (3, 1), (4, 1)}
    shape, why = fit(next(s for s in shapes(fam("gunicorn-gthread", None), 8) if s.slots == 8))
    assert shape is not None and why == ""  # no limit: nothing pruned


def test_gevent_is_capped_with_worker_connections():
    found = shapes(fam("gunicorn-gevent"), 8)
    assert {(s.workers, s.cap) for s in found} == {(1, 4), (2, 2), (3, 1), (4, 1)}
    command = found[0].target().command("app:app", 8000)
    assert command[command.index("--worker-connections") + 1] == "4"
    _, why = fit(shapes(fam("gunicorn-gevent", None), 1)[0].__class__(fam("gunicorn-gevent"), 2, None))
    assert why == (
        "capped: a thread or greenlet per connection > --max-in-flight 4; --worker-connections 2 per worker"
    )


def test_granian_is_capped_with_backpressure():
    found = shapes(fam("granian"), 4)
    assert all(s.slots <= 4 for s in found)
    assert len({(s.workers, s.slots) for s in found}) == len(found)  # a capped twin of a grid shape kept once
    wide = next(s for s in shapes(fam("granian", None), 2) if (s.workers, s.threads) == (2, 8))
    capped, why = fit(replace(wide, family=fam("granian")))
    assert capped is not None and capped.slots == 4 and why.endswith("--backpressure 2 per worker")
    command = capped.target().command("app:app", 8000)
    assert command[command.index("--backpressure") + 1] == "2"


def test_unbounded_without_a_knob_is_pruned():
    assert shapes(fam("lab-threaded"), 8) == []
    assert fit(shapes(fam("lab-threaded", None), 1)[0].__class__(fam("lab-threaded"), 1, None))[1].endswith(
        "and no option caps it"
    )


def test_neighbours_stay_within_the_limit():
    f = fam("gunicorn-gthread")
    start = next(s for s in shapes(f, 8) if (s.workers, s.threads) == (2, 2))
    assert all(n.slots <= 4 for n in neighbours(start, 8))
    gevent = next(s for s in shapes(fam("gunicorn-gevent"), 8) if s.workers == 2)
    assert {(n.workers, n.cap) for n in neighbours(gevent, 8)} == {(1, 4), (3, 1)}


def test_the_baseline_holds_at_most_the_limit():
    assert baseline(2, 4).workers == 4 and baseline(2).workers == 5


def test_summary_and_the_model_see_the_cap():
    summary = limit_summary([fam("gunicorn-gthread"), fam("gunicorn-gevent")], 4)
    assert summary["max_in_flight"] == 4 and summary["capped"] == 4 and summary["pruned"] > 0
    cal = Calibration(cpu_s=0.001, wall_s=0.1, app_ms={95.0: 100.0}, base_mb=20, worker_mb=20, thread_mb=1)
    capped = shapes(fam("gunicorn-gevent"), 1)[0]
    free = shapes(fam("gunicorn-gevent", None), 1)[0]
    assert predict(capped, cal, 2, {95.0: 250.0}).rate < predict(free, cal, 2, {95.0: 250.0}).rate
    assert predict(capped, cal, 2, {95.0: 250.0}).bound == "slots"


def step(rate: float, app_ms: float | None, failed: dict | None = None) -> ladder.Step:
    s = ladder.Step(rate, 2.0, 100, 0, {95.0: 50.0}, rate, True, "")
    s.app_ms, s.failed = app_ms, failed or {}
    return s


def measured(shape, *steps: ladder.Step) -> candidate.Candidate:
    c = candidate.Candidate(shape, predict(shape, IO, 2, {95.0: 250.0}))
    c.status, c.rounds = (
        candidate.Status.MEASURED,
        [candidate.Round([s.rate for s in steps], list(steps), 50.0, 0.5, 10.0)],
    )
    return c


def test_a_shared_wait_inside_the_app_is_named():
    """The app's own time GROWTH times its time alone, below the CPU's rate: named, with failures."""
    alone = IO.wall_s * 1000.0
    widest = shapes(fam("gunicorn-gthread", None), 1)[-1]
    wide = measured(widest, step(20, alone), step(40, alone * 5, {"503": 9}))
    narrow = measured(shapes(fam("gunicorn-gthread", None), 1)[0], step(20, alone * 1.2))
    found = waits.shared_wait(IO, [narrow, wide], 2)
    assert found is not None and found.key == wide.key and found.rate == 40
    text = found.sentence(None)
    assert "9 x 503" in text and "connection pool" in text and "--max-in-flight N" in text
    assert "held to --max-in-flight 4" in found.sentence(4)
    assert waits.shared_wait(IO, [narrow], 2) is None  # a little growth is noise, not a shared wait
    assert waits.shared_wait(CPU, [wide], 2) is None  # an app that computes waits for the GIL, not a pool
