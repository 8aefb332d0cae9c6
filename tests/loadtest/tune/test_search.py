"""The search of ``make tune`` on synthetic measurements: a known true capacity per shape and a fake clock."""

from __future__ import annotations

from dataclasses import replace

from loadtest.registry import records
from loadtest.reporting import recommendation as rendering
from loadtest.run.runner import Envelope
from loadtest.tune import candidate, candidates, floors, ladder, record, search
from loadtest.tune.calibrate import Calibration
from loadtest.tune.candidate import Status
from loadtest.tune.candidates import Shape
from loadtest.tune.model import predict
from loadtest.tune.recommend import BindingKind, Context, verdict
from loadtest.tune.settings import Budget, Settings, Slo
from loadtest.tune.sharing import MARK, Sharing
from tests.support import RECOMMENDATION_KEYS
from tests.tune_calibrations import CPU, IO, MIXED

SERVERS = ("gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent", "waitress", "lab-prefork", "lab-event")
COST_S = 30.0


class Lab:
    """A pretend machine: each shape has a true capacity and memory; a measurement costs COST_S.

    ``generator``: the load generator's limit (req/s): steps above it are short of their rate and
    marked generator-bound, as ``trial.generator_limits`` marks them.
    """

    def __init__(
        self,
        cal: Calibration,
        cpus: int,
        slowdown: float = 1.0,
        generator: float | None = None,
        memory_factor: float = 1.0,
    ) -> None:
        self.cal, self.cpus, self.now, self.slowdown = cal, cpus, 0.0, slowdown
        self.generator, self.memory_factor = generator, memory_factor
        self.measured: list[str] = []

    def capacity(self, shape: Shape) -> float:
        cores = min(shape.workers, self.cpus)
        slots = (shape.workers * shape.threads / self.cal.wall_s) if shape.threads else float("inf")
        return min(slots, cores / self.cal.cpu_s) * 0.9 * self.slowdown

    def memory(self, shape: Shape) -> float:
        threads = shape.threads or 10
        return (25 + shape.workers * (35 + (threads - 1) * 0.3)) * self.memory_factor

    def step(self, rate: float, cap: float) -> ladder.Step:
        if self.generator is not None and rate > self.generator:
            sent = int(self.generator * 4)
            missing = int(rate * 4) - sent
            why = f"errors {missing}/{int(rate * 4)}, {missing} unanswered"
            return ladder.Step(rate, 4.0, int(rate * 4), missing, {95.0: 50.0}, self.generator, False, why,
                               missing, generator_bound=True)  # fmt: skip
        ok = rate <= cap
        return ladder.Step(rate, 4.0, 100, 0, {95.0: 50.0 if ok else 900.0}, rate, ok, "" if ok else "p95")

    def measure(self, shape: Shape, rates: list[float]) -> candidate.Round:
        self.measured.append(shape.key)
        self.now += COST_S
        cap = self.capacity(shape)
        return candidate.Round(rates, [self.step(r, cap) for r in rates], self.memory(shape), None, COST_S)

    def clock(self) -> float:
        return self.now


def run(
    cal: Calibration,
    cpus: int,
    memory_mb: float,
    minutes: float,
    lab: Lab | None = None,
    recommendable: tuple[str, ...] = (),
    servers: tuple[str, ...] = SERVERS,
):
    # The search learns memory corrections into its calibration: give it its own, so the shared
    # synthetic IO/CPU stay as declared for every other test (whatever order they run in).
    cal = replace(cal, scale={}, costs={})
    lab = lab or Lab(cal, cpus)
    limits = {95.0: 200.0}
    cands = search.predicted(candidates.families(list(servers)), cal, cpus, limits, memory_mb, 64)
    s = search.search(
        cands,
        base_shape=candidates.baseline(cpus),
        measure=lab.measure,
        clock=lab.clock,
        deadline=minutes * 60,
        memory_mb=memory_mb,
        max_workers=64,
        cal=cal,
        cpus=cpus,
        limits=limits,
        say=lambda _line: None,
        recommendable=recommendable,
    )
    base = next(c for c in s.candidates if c.is_baseline)
    ctx = Context(
        cal=cal,
        budget=Budget(cpus, memory_mb * 2**20, "test", "test"),
        slo=Slo(limits),
        app="demo",
        minutes=minutes,
        unmeasured=tuple(s.unmeasured_kinds()),
        minutes_needed=minutes + s.seconds_for_unmeasured() / 60 if s.unmeasured_kinds() else None,
    )
    return s, verdict(s.candidates, base, ctx), lab


def test_io_bound_recommends_threads_at_three_times_the_baseline():
    _s, v, lab = run(IO, cpus=2, memory_mb=1024, minutes=8)
    assert lab.measured[0] == "gunicorn-sync w5 t1"  # the baseline is measured first
    assert v.recommended is not None and v.margin is not None and v.margin >= 3
    assert v.recommended.shape.threads is None or v.recommended.shape.threads > 1
    assert v.recommended.memory_mb <= 1024
    assert "waits" in v.why and v.headline[0].startswith("Recommended: python -m ")
    assert lab.now <= 8 * 60 + COST_S  # nothing started once the budget was spent


def test_cpu_bound_recommends_every_core_not_one_process_of_threads():
    s, v, _ = run(CPU, cpus=2, memory_mb=4096, minutes=8)
    assert v.recommended is not None and v.recommended.shape.workers >= 2
    singles = [c for c in s.candidates if c.status == Status.MEASURED and c.shape.workers == 1]
    assert all(v.recommended.rate_at_slo >= 1.5 * c.rate_at_slo for c in singles)
    assert "GIL" in v.why


def test_every_candidate_says_why_and_the_budget_prunes():
    s, _, _ = run(IO, cpus=2, memory_mb=200, minutes=8)
    assert all(c.why for c in s.candidates if c.status != "pending")
    over = [c for c in s.candidates if c.status == Status.PRUNED and "budget" in c.why]
    assert over and all(c.prediction.memory_mb > 200 for c in over)


def test_small_time_budget_marks_candidates_not_reached():
    s, _, lab = run(IO, cpus=2, memory_mb=1024, minutes=2)
    assert any(c.status == Status.NOT_REACHED for c in s.candidates)
    assert lab.now <= 2 * 60 + COST_S


def test_baseline_over_memory_is_said_and_not_recommended():
    _s, v, _ = run(IO, cpus=2, memory_mb=150, minutes=8)
    assert v.baseline.memory_mb is not None and v.baseline.memory_mb > 150
    # something that fits is recommended, and it is not the baseline (None would pass "is not")
    assert v.recommended is not None and v.recommended is not v.baseline
    assert v.recommended.memory_mb is not None and v.recommended.memory_mb <= 150
    assert any("baseline does not fit" in line for line in v.headline)


def test_nothing_meets_the_objectives_names_the_binding_limit():
    slow = Calibration(**{**IO.__dict__, "app_ms": {50.0: 300.0, 95.0: 400.0, 99.0: 500.0}, "scale": {}})
    _, v, _ = run(slow, cpus=2, memory_mb=1024, minutes=4, lab=Lab(slow, 2, slowdown=0.0))
    assert v.recommended is None and v.binding.kind == BindingKind.APP_LATENCY
    assert v.headline[0].startswith("No configuration met")


def test_one_single_process_candidate_is_measured_as_the_contrast():
    s, _, lab = run(CPU, cpus=2, memory_mb=4096, minutes=8)
    assert search.single_process(next(c for c in s.candidates if c.key == lab.measured[1]).shape)
    assert any("contrast" in c.why and c.status == Status.MEASURED for c in s.candidates)


def test_the_record_and_its_two_renderings(tmp_path):
    """recommendation.json's keys, and the Markdown and HTML made from it, on a synthetic search."""
    s, v, _ = run(IO, cpus=2, memory_mb=1024, minutes=8)
    args = Settings("demo", [("/sleep?s=0.05", 1.0)], None, Slo({95.0: 200.0}),
                    Budget(2, 2**30, "test", "test"), [], 8.0, None, 1)  # fmt: skip
    rec = record.document(args, IO, s.candidates, v, 400.0, (0.5, 0.7))
    assert isinstance(rec.recommended, records.Configuration) and rec.baseline.workers == 5
    doc = rec.as_dict()
    # the file's historical key order: recommended before baseline, a configuration's key first
    assert list(doc)[:3] == ["headline", "recommended", "baseline"] and list(doc)[-2:] == [
        "candidates",
        "format",
    ]
    assert list(doc["baseline"])[:3] == ["key", "target", "server"]
    for role in ("recommended", "baseline"):
        assert all(k in doc[role] for k in RECOMMENDATION_KEYS)
    assert doc["baseline"]["workers"] == 5 and doc["margin"] == v.margin
    assert {c["status"] for c in doc["candidates"]} >= {"measured", "pruned"}
    rendering.write(tmp_path, doc)
    md = (tmp_path / "recommendation.md").read_text().splitlines()
    assert md[0] == "# Which configuration should I run?" and md[2] == v.headline[0]
    assert (tmp_path / "recommendation.html").read_text().count("data:image/png;base64,") == 2


DEPLOYABLE = tuple(n for n in SERVERS if not n.startswith("lab-"))


def test_mixed_workload_recommends_many_requests_per_process():
    """3 fast : 1 waiting 100 ms on one core: threads, >= 8 in flight per process, >= 5x the baseline."""
    _s, v, _ = run(MIXED, cpus=1, memory_mb=768, minutes=8)
    rec = v.recommended
    assert rec is not None and v.margin is not None and v.margin >= 5
    assert rec.rate_at_slo * MIXED.wall_s / rec.shape.workers >= 8  # Little's law, per process
    assert "only processes add capacity" not in v.why and "per process" in v.why


def test_a_shape_that_beats_its_prediction_unprunes_its_familys_bigger_shapes():
    """The model overestimates CPU 3x: every thread shape is predicted CPU-bound at one low rate."""
    wrong = replace(MIXED, cpu_s=3 * MIXED.cpu_s, scale={}, costs={})
    s, v, lab = run(wrong, cpus=1, memory_mb=768, minutes=10, lab=Lab(MIXED, 1))
    assert any("re-predicted" in c.why for c in s.candidates)
    first = next(c for c in s.candidates if c.key == lab.measured[1])  # the first shape after the baseline
    assert v.recommended is not None and v.recommended.rate_at_slo >= 1.5 * first.prediction.rate


def test_every_kind_is_measured_before_interval_rounds():
    s, _, lab = run(IO, cpus=2, memory_mb=1024, minutes=6)
    kinds = {c.shape.family.kind for c in s.candidates if c.status == Status.MEASURED}
    assert kinds == {"processes", "threads", "greenlets"}  # the kinds of SERVERS
    confirm = [i for i, key in enumerate(lab.measured) if lab.measured[:i].count(key) >= 1]
    kind_of = {c.key: c.shape.family.kind for c in s.candidates}
    firsts = [lab.measured.index(next(k for k in lab.measured if kind_of[k] == kind)) for kind in kinds]
    assert not confirm or max(firsts) < confirm[-1]


def test_the_why_agrees_with_the_recommended_shape():
    """Never "only processes add capacity" beside a winner that holds more than one request per process."""
    for cal, cpus in ((IO, 2), (CPU, 2), (MIXED, 1), (CPU, 1)):
        _s, v, _ = run(cal, cpus=cpus, memory_mb=4096, minutes=8)
        assert v.recommended is not None
        several = v.recommended.shape.threads is None or v.recommended.shape.threads > 1
        assert ("only processes add capacity" in v.why) == (not several and cal.io_share < 0.5), v.why
        assert "requests are in the app at once" in v.why or not several


def test_our_own_models_are_the_contrast_unless_named():
    """lab-event beats sync workers on an I/O-bound app: measured and shown, recommended only when named."""
    servers = ("gunicorn-sync", "lab-event")
    s, v, _ = run(IO, cpus=2, memory_mb=1024, minutes=10, servers=servers, recommendable=("gunicorn-sync",))
    ours = [c for c in s.candidates if c.shape.family.name == "lab-event" and c.status == Status.MEASURED]
    assert ours and v.recommended is not None and v.recommended.shape.family.name == "gunicorn-sync"
    assert max(c.rate_at_slo for c in ours) > v.recommended.rate_at_slo
    _s, named, _ = run(IO, cpus=2, memory_mb=1024, minutes=10, servers=servers, recommendable=servers)
    assert named.recommended is not None and named.recommended.shape.family.name == "lab-event"


def test_at_the_generators_limit_every_figure_is_a_lower_bound(tmp_path):
    s, v, _ = run(IO, cpus=2, memory_mb=1024, minutes=8, lab=Lab(IO, 2, generator=300.0))
    rec = v.recommended
    assert rec is not None and rec.lower_bound and rec.at_generator_limit
    assert "at least" in v.headline[0] and "the load generator's limit here" in v.headline[0]
    assert v.headline[1].startswith("At least ") and "x the baseline" in v.headline[1]
    tied = [c for c in s.candidates if c.status == Status.MEASURED and c.at_generator_limit]
    assert len(tied) >= 2 and len(v.tied) >= 2
    assert any(line.startswith("Tied at the load generator's limit") and "smaller memory" in line
               for line in v.headline)  # fmt: skip
    doc = record.document(args_for(2), IO, s.candidates, v, 400.0, (0.5, 0.7)).as_dict()
    assert doc["recommended"]["rate_at_slo_lower_bound"] is True and doc["generator_limit_rps"] == 300.0
    assert any(c["rate_at_slo_lower_bound"] for c in doc["candidates"] if c["key"] != rec.key)
    rendering.write(tmp_path, doc)
    assert "≥ " in (tmp_path / "recommendation.md").read_text()
    # the baseline stays far below the limit: its figure is a measurement, not a floor
    assert not doc["baseline"]["rate_at_slo_lower_bound"]


def test_verdict_memory():
    _s, v, _ = run(IO, cpus=2, memory_mb=150, minutes=8, lab=Lab(IO, 2, memory_factor=4.0))
    assert v.recommended is None and v.binding.kind == BindingKind.MEMORY


def test_verdict_cpu():
    _s, v, _ = run(CPU, cpus=2, memory_mb=1024, minutes=4, lab=Lab(CPU, 2, slowdown=0.0))
    assert v.recommended is None and v.binding.kind == BindingKind.CPU


def test_verdict_time_budget_measures_only_the_baseline_and_recommends_nothing():
    _s, v, lab = run(IO, cpus=2, memory_mb=1024, minutes=1)
    assert set(lab.measured) == {"gunicorn-sync w5 t1"}
    assert v.recommended is None and v.binding.kind == BindingKind.TIME_BUDGET
    assert v.headline[0].startswith("Nothing recommended") and "--minutes" in " ".join(v.headline)
    assert v.unmeasured == ["threads", "greenlets"] and v.minutes_needed and v.minutes_needed > 1
    assert "Why" not in " ".join(v.headline)


def test_verdict_the_apps_own_errors_stop_before_the_search():
    cal = replace(IO, app_errors="the app's own errors: 6 of 200 answers (3.0%) were errors (/: 6 x 500)")
    base = candidate.Candidate(candidates.baseline(2), predict(candidates.baseline(2), cal, 2, {95.0: 200.0}),
                            is_baseline=True)  # fmt: skip
    ctx = Context(cal=cal, budget=Budget(2, 2**30, "test", "test"), slo=Slo({95.0: 200.0}), app="demo")
    v = verdict([base], base, ctx)
    text = " ".join(v.headline)
    assert v.recommended is None and v.binding.kind == BindingKind.APP_ERRORS and "500" in text
    assert "limit is CPU" not in text and "stopped after calibration" in text


def args_for(cpus: int) -> Settings:
    return Settings("demo", [("/sleep?s=0.05", 1.0)], None, Slo({95.0: 200.0}),
                    Budget(cpus, 2**30, "test", "test"), [], 8.0, None, 1)  # fmt: skip


def test_the_record_keeps_the_workload_means_and_each_paths_figures(tmp_path):
    s, v, _ = run(MIXED, cpus=1, memory_mb=768, minutes=8)
    doc = record.document(args_for(1), MIXED, s.candidates, v, 400.0, (0.5, 0.7)).as_dict()
    cal = doc["calibration"]
    assert cal["app_ms_mean"] == MIXED.wall_s * 1000 and cal["cpu_ms_mean"] <= cal["app_ms_mean"]
    assert 0.7 <= cal["io_share"] <= 1.0
    assert [(p["path"], p["weight"]) for p in cal["paths"]] == [("/", 0.75), ("/sleep?s=0.1", 0.25)]
    assert all(p["cpu_ms_mean"] <= p["app_ms_mean"] for p in cal["paths"])
    rendering.write(tmp_path, doc)
    md = (tmp_path / "recommendation.md").read_text()
    assert "| /sleep?s=0.1 | 25% |" in md and "Little's law" in md


class OomLab(Lab):
    """A docker runtime whose memory limit every shape overruns: each is OOM-killed on its first step."""

    def measure(self, shape: Shape, rates: list[float]) -> candidate.Round:
        self.measured.append(shape.key)
        self.now += COST_S
        limits = Envelope("docker", 150_000, 100_000, memory_limit_mb=100.0, oom_kills=2, oom_killed=True)
        why = "killed by the OOM killer (2 kill(s) at 100 MiB)"
        return candidate.Round(rates, [], None, None, COST_S, why, envelope=limits)


def test_verdict_oom_kills_are_the_memory_limit_and_the_record_counts_them():
    s, v, lab = run(IO, cpus=2, memory_mb=100, minutes=8, lab=OomLab(IO, 2))
    assert len(lab.measured) > 1 and all(c.status == "failed" for c in s.candidates if c.rounds)
    assert (
        v.recommended is None and v.binding.kind == BindingKind.MEMORY and "OOM killer" in v.binding.sentence
    )
    assert "CPU" not in v.binding.sentence
    doc = record.document(args_for(2), IO, s.candidates, v, 400.0, (0.5, 0.7)).as_dict()
    killed = [c for c in doc["candidates"] if c.get("oom_kills")]
    assert killed and all(c["runtime"] == "docker" and c["memory_limit_mb"] == 100.0 for c in killed)
    assert all(m["box"]["oom_killed"] for c in killed for m in c["measurements"])
    assert all(
        m["box"]["cpu_quota"] == 1.5 and "throttling" not in m["box"]
        for c in killed
        for m in c["measurements"]
    )


def test_verdict_the_apps_own_errors_come_before_oom_kills():
    cal = replace(IO, app_errors="the app's own errors: 6 of 200 answers (3.0%) were errors (/: 6 x 500)")
    s, _v, _ = run(IO, cpus=2, memory_mb=100, minutes=8, lab=OomLab(IO, 2))
    base = next(c for c in s.candidates if c.is_baseline)
    ctx = Context(cal=cal, budget=Budget(2, 100 * 2**20, "test", "test"), slo=Slo({95.0: 200.0}), app="demo")
    v = verdict(s.candidates, base, ctx)
    assert v.binding.kind == BindingKind.APP_ERRORS


def test_a_fractional_cpu_quota_takes_its_rounded_baseline():
    assert candidates.baseline(1.5).workers == 4 and candidates.baseline(0.5).workers == 2


def test_the_why_names_the_wait_for_a_core_it_leaves_out_of_the_io_share():
    """io_share leaves run-queue time out, so the sentence names it: "computes 100%" then adds up."""
    queued = Calibration(**{**CPU.__dict__, "app_cpu_s": 0.00119, "queue_s": 0.00004, "wall_s": 0.00123})
    assert queued.io_share == 0.0
    _s, v, _ = run(queued, cpus=1, memory_mb=4096, minutes=8)
    assert v.recommended is not None
    assert "computes 100% of each request (CPU 1.19 ms and 0.04 ms waiting for a core of 1.23 ms" in v.why


def test_a_ladder_whose_top_passes_is_extended_until_a_step_fails():
    # the server is 4x faster than the model predicts: every first ladder passes its top step
    s, v, _ = run(CPU, cpus=2, memory_mb=1024, minutes=30, lab=Lab(CPU, 2, slowdown=4.0))
    base = next(c for c in s.candidates if c.is_baseline)
    assert not base.lower_bound and base.stop is None
    assert v.recommended is not None and not v.recommended.lower_bound
    assert "at least" not in v.headline[0] and not v.headline[1].lower().startswith(("at most", "at least"))


def floor_and_measured(rec_rate: float, base_rate: float) -> tuple[candidate.Candidate, candidate.Candidate]:
    """A measured recommendation (its top step failed) and a baseline whose every step passed."""
    limits = {95.0: 200.0}
    sync, gthread = (
        candidates.family(candidates.targets.TARGETS["gunicorn-sync"]),
        candidates.family(candidates.targets.TARGETS["gunicorn-gthread"]),
    )

    def cand(shape: Shape, rates: list[float], cap: float, baseline: bool) -> candidate.Candidate:
        c = candidate.Candidate(
            shape, predict(shape, CPU, 2, limits), status=Status.MEASURED, is_baseline=baseline
        )
        c.rounds = [candidate.Round(rates, [Lab(CPU, 2).step(r, cap) for r in rates], 100.0, None, COST_S)]
        return c

    rec = cand(Shape(gthread, 2, 4), [rec_rate * 0.8, rec_rate, rec_rate * 1.2], rec_rate, False)
    base = cand(Shape(sync, 5, 1), [base_rate * 0.5, base_rate], 1e9, True)
    return rec, base


def test_a_floor_is_never_tied_with_a_measured_rate_and_a_margin_over_it_is_at_most():
    rec, base = floor_and_measured(418.0, 405.0)  # within 3 %: a tie, were the baseline measured
    assert base.lower_bound and not rec.lower_bound
    assert search.tied([rec, base], 1024) == [rec]
    base.stopped = floors.Stop.TIME_BUDGET
    ctx = Context(
        cal=CPU, budget=Budget(2, 1024 * 2**20, "test", "test"), slo=Slo({95.0: 200.0}), app="app:app"
    )
    v = verdict([rec, base], base, ctx)
    assert v.recommended is rec and v.tied == [rec]
    assert v.headline[1].startswith("At most 1.0x the baseline") and "at least 405 req/s" in v.headline[1]
    assert not any(line.startswith("Tied") for line in v.headline)


def test_two_floors_name_what_stopped_the_ladder_not_the_generator_when_it_had_room():
    rec, base = floor_and_measured(400.0, 81.0)
    rec.rounds = [candidate.Round([200, 300, 400], [Lab(CPU, 2).step(r, 1e9) for r in (200, 300, 400)], 100.0,
                                  None, COST_S)]  # fmt: skip
    rec.stopped = base.stopped = floors.Stop.LADDER_TOP
    ctx = Context(
        cal=CPU, budget=Budget(2, 1024 * 2**20, "test", "test"), slo=Slo({95.0: 200.0}), app="app:app"
    )
    v = verdict([rec, base], base, ctx)
    assert "the margin is unknown" in v.headline[1] and "highest ladder tried" in v.headline[1]
    assert "--generator-workers" not in v.headline[1]


def test_a_shared_machine_marks_the_headline_and_the_record(tmp_path):
    rec, base = floor_and_measured(418.0, 200.0)
    rec.rounds[0].steps[1].generator_busiest = 0.85
    sharing = Sharing.of(2, 0, 2)
    ctx = Context(cal=CPU, budget=Budget(2, 1024 * 2**20, "test", "test"), slo=Slo({95.0: 200.0}),
                  app="app:app", sharing=sharing)  # fmt: skip
    v = verdict([rec, base], base, ctx)
    assert MARK in v.headline[0]
    assert any("85% of a core" in line and "--expect-workers" in line for line in v.headline)
    doc = record.document(args_for(2), CPU, [rec, base], v, 100.0, (0.5, 0.7)).as_dict()
    assert doc["shared_machine"]["shared"] is (doc["budget"]["cpus"] >= sharing_cores())
    doc["shared_machine"]["shared"] = True  # as on a 2-core machine
    rendering.write(tmp_path, doc)
    page = (tmp_path / "recommendation.md").read_text()
    assert "pinned" not in page and "shared with the generator" in page and MARK in page


def sharing_cores() -> int:
    from loadtest.tune.sharing import machine_cores

    return machine_cores()


def test_a_rerun_names_its_recommendation_against_the_earlier_runs(tmp_path):
    """main.write reads the earlier run's ``recommended`` as a Configuration and compares it with this one."""
    import datetime as dt

    from loadtest.tune import main

    s, v, _ = run(IO, cpus=2, memory_mb=1024, minutes=8)
    now = dt.datetime.now(dt.UTC)
    args = args_for(2)
    main.write(tmp_path / "a", args, IO, s.candidates, v, 400.0, (now, now), None)
    again = replace(args, against=tmp_path / "a")
    main.write(tmp_path / "b", again, IO, s.candidates, v, 400.0, (now, now), None)
    check = records.load_recommendation(tmp_path / "b").extra["rerun_check"]
    assert check.startswith("same shape as the earlier run") and v.recommended.key in check
