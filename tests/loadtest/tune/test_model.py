"""The capacity and memory model of ``make tune``, and the shapes found from the registry."""

from __future__ import annotations

import itertools

import psutil
import pytest

from loadtest.registry import targets
from loadtest.registry.records import Configuration
from loadtest.registry.steps import parse_step_name, step_name
from loadtest.tune import calibrate, candidates, ladder, model, trial
from loadtest.tune.candidates import Shape, family
from loadtest.tune.recommend import against
from tests.tune_calibrations import CPU, IO, MIXED

P95 = {95.0: 200.0}


def shape(name: str, workers: int, threads: int | None) -> Shape:
    return Shape(family(targets.TARGETS[name]), workers, threads)


def test_families_found_from_the_registry_options():
    sync, gthread = family(targets.TARGETS["gunicorn-sync"]), family(targets.TARGETS["gunicorn-gthread"])
    assert (sync.process_flag, sync.thread_flag, sync.per_connection) == ("--workers", None, False)
    assert (gthread.process_flag, gthread.thread_flag) == ("--workers", "--threads")
    event = family(
        targets.TARGETS["lab-event"]
    )  # --threads is implicit (default 8): found by its capacity rule
    assert (event.process_flag, event.thread_flag) == (None, "--threads")
    assert family(targets.TARGETS["waitress"]).thread_flag == "--threads="
    gevent = family(targets.TARGETS["gunicorn-gevent"])
    assert gevent.per_connection and gevent.process_flag == "--workers"
    assert family(targets.TARGETS["lab-threaded"]).per_connection


def test_shape_command_overrides_the_registry_counts():
    s = shape("gunicorn-gthread", 3, 16)
    assert s.target().capacity(1000) == 48
    command = s.deploy_command("myapp:app")
    assert command.startswith("python -m gunicorn --bind 0.0.0.0:8000")
    assert "--workers 3 --threads 16" in command and command.count("--workers") == 1
    assert command.endswith(" myapp:app")
    assert shape("waitress", 1, 8).target().capacity(1000) == 8
    assert candidates.baseline(2).workers == 5 and candidates.baseline(2).family.worker_class == "sync"


def test_shapes_grid_and_neighbours():
    sync = family(targets.TARGETS["gunicorn-sync"])
    grid = candidates.shapes(sync, max_workers=6)
    assert [s.workers for s in grid] == [1, 2, 3, 4, 5, 6] and {s.threads for s in grid} == {1}
    assert len(candidates.shapes(family(targets.TARGETS["lab-event"]), 64)) == len(candidates.THREAD_STEPS)
    around = candidates.neighbours(shape("gunicorn-gthread", 4, 16), 64)
    assert {(s.workers, s.threads) for s in around} == {(3, 16), (5, 16), (4, 8), (4, 32)}


def test_io_bound_capacity_is_slots_over_wall_time():
    p = model.predict(shape("gunicorn-sync", 5, 1), IO, cpus=2, limits=P95)
    assert p.bound == "slots" and p.rate == pytest.approx(5 / 0.05 * model.UTILISATION)
    threaded = model.predict(shape("gunicorn-gthread", 2, 16), IO, cpus=2, limits=P95)
    assert threaded.rate >= 3 * p.rate


def test_cpu_bound_capacity_is_capped_by_the_gil_and_the_cores():
    one = model.predict(shape("gunicorn-gthread", 1, 8), CPU, cpus=2, limits=P95)
    assert one.bound == "gil" and one.rate == pytest.approx(1 / 0.01 * model.UTILISATION)
    two = model.predict(shape("gunicorn-sync", 2, 1), CPU, cpus=2, limits=P95)
    assert two.bound == "cpu" and two.rate == pytest.approx(2 * one.rate)
    many = model.predict(shape("gunicorn-sync", 8, 1), CPU, cpus=2, limits=P95)
    assert many.rate == pytest.approx(two.rate)  # more processes than cores add no capacity


def test_an_app_slower_than_the_objective_cannot_meet_it():
    p = model.predict(shape("gunicorn-gthread", 4, 32), IO, cpus=2, limits={95.0: 40.0})
    assert (p.rate, p.bound) == (0.0, "latency")


def test_memory_prediction_and_learning():
    s = shape("gunicorn-gthread", 2, 16)
    assert model.memory_mb(s, IO, in_flight=0) == pytest.approx(20 + 2 * (30 + 15 * 0.5))
    per_connection = shape("gunicorn-gevent", 1, None)
    assert model.memory_mb(per_connection, IO, in_flight=11) == pytest.approx(20 + 30 + 10 * 0.5)
    cal = calibrate.Calibration(**{**IO.__dict__, "scale": {}})
    model.learn_memory(cal, s, measured_mb=190.0, predicted_mb=95.0)
    assert model.memory_mb(s, cal, 0) == pytest.approx(190.0)
    assert model.memory_mb(shape("gunicorn-sync", 1, 1), cal, 0) == pytest.approx(
        50.0
    )  # another target: unscaled


def test_io_share():
    assert IO.io_share == pytest.approx(0.98) and CPU.io_share == 0.0
    starved = calibrate.Calibration(**{**CPU.__dict__, "wall_s": 0.040, "queue_s": 0.030, "scale": {}})
    assert starved.io_share == 0.0  # waiting for a core on a busy machine is not I/O


def test_the_run_queue_wait_is_read_on_this_platform():
    """``runqueue_seconds`` (the wait ``queue_s`` is made of) reads this process's schedstat."""
    assert trial.runqueue_seconds([psutil.Process()]) is not None


def records(step: int, n: int, ms: float, failed: int = 0) -> list[dict]:
    return [{"name": step_name(step, "/x"), "t": 1.0 + i, "ms": ms, "ok": i >= failed} for i in range(n)]


def test_ladder_judges_each_step_after_the_warm_up():
    rates = [10.0, 20.0, 40.0, 80.0, 160.0]
    warm = records(0, 10, 5000)  # the warm-up step: slow, never judged
    recs = warm + records(1, 40, 50) + records(2, 80, 60) + records(3, 160, 300) + records(4, 320, 400)
    recs += records(5, 640, 50)
    steps = ladder.judge_ladder(rates, 4.0, recs, P95, 0.001)
    assert [s.passed for s in steps] == [True, True, False, False, True]
    assert "p95 300 ms > 200 ms" in steps[2].why
    rate, step, topped = ladder.rate_at_slo(steps)
    assert (rate, topped) == (20.0, False) and step is steps[1]  # nothing above two failures in a row counts
    assert ladder.offered(rates) == [10.0, *rates]


def test_a_lone_failing_step_below_a_passing_one_is_noise():
    lone = [
        ladder.judge(r, 4.0, records(0, int(r * 4), ms), P95, 0.001)
        for r, ms in ((10, 50), (20, 900), (40, 50))
    ]
    assert ladder.rate_at_slo(lone) == (40.0, lone[2], True)
    last = lone[:2]
    assert ladder.rate_at_slo(last)[0] == 10.0  # a failing top step ends it


def test_ladder_counts_errors_and_unanswered_requests():
    errors = ladder.judge(10.0, 4.0, records(0, 40, 10, failed=1), P95, 0.001)
    assert not errors.passed and errors.why.startswith("errors 1/40")
    missing = ladder.judge(100.0, 4.0, records(0, 100, 10), P95, 0.001)  # 400 expected, 100 answered
    assert not missing.passed and "unanswered" in missing.why
    assert ladder.judge(100.0, 4.0, [], P95, 0.001).why.startswith("not run")
    every = ladder.judge_ladder([5.0, 10.0], 4.0, records(1, 20, 5) + records(2, 40, 5), P95, 0.001)
    assert ladder.rate_at_slo(every) == (10.0, every[1], True)


def test_geometric_ladders():
    first = ladder.first_ladder(100.0)
    assert first[0] == 30.0 and first[-1] == 160.0 and len(first) == ladder.FIRST_STEPS
    assert all(b > a for a, b in itertools.pairwise(first))


def test_requests_named_by_the_user_are_sliced_by_the_step_markers():
    marks = [
        {"name": "s0 __step__", "t": 10.0, "ms": 0, "ok": True},
        {"name": "s1 __step__", "t": 14.0, "ms": 0, "ok": True},
    ]
    own = [{"name": "browse", "t": t, "ms": 20, "ok": True} for t in (10.5, 13.9, 14.0, 17.0)]
    steps = ladder.by_step(marks + own)
    assert [r["t"] for r in steps[0]] == [10.5, 13.9] and [r["t"] for r in steps[1]] == [14.0, 17.0]
    assert ladder.requests_only(marks + own) == own


def rec(target: str, workers: int, threads: int | None, rate: float, ci: list[float] | None = None):
    key = f"{target} w{workers} t{threads}"
    return Configuration(server="gunicorn", worker_class="gthread", workers=workers, threads=threads,
                         command="", rate_at_slo=rate, p95_ms=None, memory_mb=None, cpus=2, key=key,
                         target=target, rate_at_slo_interval=ci)  # fmt: skip


def test_a_rerun_is_judged_by_shape_then_by_intervals():
    assert against(rec("gunicorn-gthread", 2, 32, 500), rec("gunicorn-gthread", 3, 16, 300)).startswith(
        "same shape"
    )
    far = against(rec("gunicorn-gthread", 2, 32, 500), rec("gunicorn-gthread", 8, 32, 500))
    assert far.startswith("another shape") and "within each other's intervals" in far
    apart = against(rec("gunicorn-gthread", 2, 32, 500, [480, 520]), rec("waitress", 1, 64, 300, [280, 310]))
    assert apart.endswith("beyond the intervals")
    assert against(None, None) == "same verdict as the earlier run"
    assert against(rec("waitress", 1, 64, 300), None) == "a different verdict from the earlier run"


def answer(step: int, path: str, wall_ms: float, cpu_ms: float | None, status: int = 200) -> dict:
    return {"name": step_name(step, path), "ok": status < 400, "status": status, "ms": wall_ms + 1,
            "start": 100.0, "end": 100.0 + wall_ms / 1000, "cpu_ms": cpu_ms}  # fmt: skip


def test_a_mixed_workload_is_calibrated_per_path_on_the_means():
    """The median of 3 fast : 1 slow is the fast path's; the model must see the slow quarter."""
    records = [answer(i % 5, "/", 0.5, 0.45) for i in range(300)]
    records += [answer(i % 5, "/sleep?s=0.1", 101.0, 0.3) for i in range(100)]
    paths = calibrate.path_costs(records, {"/": 3.0, "/sleep?s=0.1": 1.0}, server_cpu_ms=1.2)
    assert [(p.name, p.weight, p.requests) for p in paths] == [("/", 0.75, 300), ("/sleep?s=0.1", 0.25, 100)]
    wall = calibrate.weighted(paths, lambda p: p.app_ms_mean)
    assert wall == pytest.approx(0.75 * 0.5 + 0.25 * 101.0) and wall > 20 * paths[0].app_ms[50.0]
    assert paths[1].app_ms[95.0] == pytest.approx(101.0)
    cal = calibrate.Calibration(**{**MIXED.__dict__, "scale": {}, "costs": {}})
    assert cal.io_share >= 0.9  # 1 - mean CPU / mean wall
    threads = model.predict(shape("gunicorn-gthread", 1, 32), cal, cpus=1, limits={95.0: 300.0})
    sync = model.predict(shape("gunicorn-sync", 3, 1), cal, cpus=1, limits={95.0: 300.0})
    assert threads.rate >= 5 * sync.rate  # threads pay off: the slow quarter waits


def test_cpu_is_never_above_wall_time_and_io_share_stays_within_0_and_1():
    """A path faster than the server's own CPU per request: the CPU shown is capped at the wall time."""
    fast = calibrate.path_cost("/", 1.0, [answer(0, "/", 0.5, None)], server_cpu_ms=1.16)
    assert fast.cpu_ms_mean <= fast.app_ms_mean
    cal = calibrate.Calibration(cpu_s=0.00116, wall_s=0.0005, app_ms={95.0: 0.6}, base_mb=1, worker_mb=1,
                            thread_mb=0.1)  # fmt: skip
    assert cal.in_app_cpu_s <= cal.wall_s and 0.0 <= cal.io_share <= 1.0
    locust_named = calibrate.path_costs([answer(0, "browse", 5, 1), answer(1, "buy", 5, 1)], {}, 1.0)
    assert {p.name for p in locust_named} == {"browse", "buy"} and sum(p.weight for p in locust_named) == 1


def test_the_apps_own_errors_are_named_with_status_and_share():
    records = [answer(0, "/", 1.0, 0.5, status=500 if i % 33 == 0 else 200) for i in range(200)]
    paths = calibrate.path_costs(records, {"/": 1.0}, 1.0)
    why = calibrate.app_errors(paths, max_error_rate=0.001)
    assert why.startswith("the app's own errors") and "500" in why and "3.5%" in why and "/" in why
    assert calibrate.app_errors(paths, max_error_rate=0.05) == ""  # within a generous budget
    one = calibrate.path_costs([answer(0, "/", 1, 0.5, 503)] + [answer(0, "/", 1, 0.5)] * 99, {}, 1.0)
    assert calibrate.app_errors(one, 0.001) == ""  # a single error answer is not evidence enough


def test_learning_moves_the_bound_behind_the_prediction():
    cal = calibrate.Calibration(**{**MIXED.__dict__, "scale": {}, "costs": {}})
    s = shape("gunicorn-gthread", 1, 8)
    before = model.predict(s, cal, cpus=1, limits=P95)
    assert model.learn(cal, s, measured=2 * before.rate, predicted=before, floor=False) is not None
    after = model.predict(s, cal, cpus=1, limits=P95)
    assert after.rate == pytest.approx(2 * before.rate, rel=0.01)
    bigger = model.predict(shape("gunicorn-gthread", 1, 64), cal, cpus=1, limits=P95)
    assert bigger.rate > after.rate  # the family's bigger shapes rise with it
    assert model.learn(cal, s, measured=after.rate / 2, predicted=after, floor=True) is None  # a floor
    assert model.predict(shape("gunicorn-sync", 1, 1), cal, 1, P95).rate == pytest.approx(
        model.predict(shape("gunicorn-sync", 1, 1), MIXED, 1, P95).rate
    )  # another target: unchanged


def test_a_step_short_of_its_rate_with_quick_answers_is_the_generators_limit():
    """400 requests due, 100 sent and all answered quickly: the generator, not the server, fell short."""
    short = ladder.judge(100.0, 4.0, records(0, 100, 10), P95, 0.001)
    assert ladder.short_of_rate(short, P95)
    slow = ladder.judge(100.0, 4.0, records(0, 100, 900), P95, 0.001)
    assert not ladder.short_of_rate(slow, P95)  # answers were slow: the server's queue
    steps = [ladder.judge(r, 4.0, records(0, int(r * 4), 10), P95, 0.001) for r in (10.0, 20.0)]
    steps.append(short)
    short.generator_bound = True
    rate, best, _ = ladder.rate_at_slo(steps)
    assert rate == 20.0 and ladder.at_generator_limit(steps, best)
    steps[-1] = slow
    assert not ladder.at_generator_limit(steps, ladder.rate_at_slo(steps)[1])


def test_the_step_name_is_read_back_as_written():
    """The generator's record names (``steps.step_name``) and what the ladder and calibration read."""
    assert parse_step_name(step_name(12, "/a b?c=1")) == (12, "/a b?c=1")
    assert ladder.step_of({"name": step_name(3, "/x")}) == 3
    assert calibrate.path_of({"name": step_name(3, "/x")}) == "/x"
    assert parse_step_name("/x") is None and parse_step_name("sx /x") is None
    assert calibrate.path_of({"name": "GET users"}) == "GET users"  # a name the generator did not make
