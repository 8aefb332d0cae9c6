"""The search of ``make tune`` on synthetic measurements: a known true capacity per shape and a fake clock."""

from __future__ import annotations

from dataclasses import replace

from loadtest.reporting import recommendation as rendering
from loadtest.tune import candidates, ladder, report, search
from loadtest.tune.budget import Budget, Slo, TuneArgs
from loadtest.tune.candidates import Shape
from loadtest.tune.model import Calibration
from loadtest.tune.recommend import Context, verdict
from tests.support import RECOMMENDATION_KEYS
from tests.tune_calibrations import CPU, IO

SERVERS = ["gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent", "waitress", "lab-prefork", "lab-event"]
COST_S = 30.0


class Lab:
    """A pretend machine: each shape has a true capacity and memory; a measurement costs COST_S."""

    def __init__(self, cal: Calibration, cpus: int, slowdown: float = 1.0) -> None:
        self.cal, self.cpus, self.now, self.slowdown = cal, cpus, 0.0, slowdown
        self.measured: list[str] = []

    def capacity(self, shape: Shape) -> float:
        cores = min(shape.workers, self.cpus)
        slots = (shape.workers * shape.threads / self.cal.wall_s) if shape.threads else float("inf")
        return min(slots, cores / self.cal.cpu_s) * 0.9 * self.slowdown

    def memory(self, shape: Shape) -> float:
        threads = shape.threads or 10
        return 25 + shape.workers * (35 + (threads - 1) * 0.3)

    def measure(self, shape: Shape, rates: list[float]) -> search.Round:
        self.measured.append(shape.key)
        self.now += COST_S
        cap = self.capacity(shape)
        steps = [
            ladder.Step(
                r, 4.0, 100, 0, {95.0: 50.0 if r <= cap else 900.0}, r, r <= cap, "" if r <= cap else "p95"
            )
            for r in rates
        ]
        return search.Round(rates, steps, self.memory(shape), None, COST_S)

    def clock(self) -> float:
        return self.now


def run(
    cal: Calibration,
    cpus: int,
    memory_mb: float,
    minutes: float,
    lab: Lab | None = None,
    recommendable: tuple[str, ...] = (),
):
    # The search learns memory corrections into its calibration: give it its own, so the shared
    # synthetic IO/CPU stay as declared for every other test (whatever order they run in).
    cal = replace(cal, scale={}, costs={})
    lab = lab or Lab(cal, cpus)
    limits = {95.0: 200.0}
    cands = search.predicted(candidates.families(SERVERS), cal, cpus, limits, memory_mb, 64)
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
        app="app:app",
        minutes=minutes,
        recommendable=recommendable,
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
    singles = [c for c in s.candidates if c.status == "measured" and c.shape.workers == 1]
    assert all(v.recommended.rate_at_slo >= 1.5 * c.rate_at_slo for c in singles)
    assert "GIL" in v.why


def test_every_candidate_says_why_and_the_budget_prunes():
    s, _, _ = run(IO, cpus=2, memory_mb=200, minutes=8)
    assert all(c.why for c in s.candidates if c.status != "pending")
    over = [c for c in s.candidates if c.status == "pruned" and "budget" in c.why]
    assert over and all(c.prediction.memory_mb > 200 for c in over)


def test_small_time_budget_marks_candidates_not_reached():
    s, _, lab = run(IO, cpus=2, memory_mb=1024, minutes=2)
    assert any(c.status == "not reached" for c in s.candidates)
    assert lab.now <= 2 * 60 + COST_S


def test_baseline_over_memory_is_said_and_not_recommended():
    _s, v, _ = run(IO, cpus=2, memory_mb=150, minutes=8)
    assert v.baseline.memory_mb is not None and v.baseline.memory_mb > 150
    assert v.recommended is not v.baseline
    assert any("baseline does not fit" in line for line in v.headline)


def test_nothing_meets_the_objectives_names_the_binding_limit():
    slow = Calibration(**{**IO.__dict__, "app_ms": {50.0: 300.0, 95.0: 400.0, 99.0: 500.0}, "scale": {}})
    _, v, _ = run(slow, cpus=2, memory_mb=1024, minutes=4, lab=Lab(slow, 2, slowdown=0.0))
    assert v.recommended is None and v.binding.startswith("the app's own latency")
    assert v.headline[0].startswith("No configuration met")


def test_one_single_process_candidate_is_measured_as_the_contrast():
    s, _, lab = run(CPU, cpus=2, memory_mb=4096, minutes=8)
    assert search.single_process(next(c for c in s.candidates if c.key == lab.measured[1]).shape)
    assert any("contrast" in c.why and c.status == "measured" for c in s.candidates)


def test_the_record_and_its_two_renderings(tmp_path):
    """recommendation.json's keys, and the Markdown and HTML made from it, on a synthetic search."""
    s, v, _ = run(IO, cpus=2, memory_mb=1024, minutes=8)
    args = TuneArgs("app:app", [("/sleep?s=0.05", 1.0)], None, Slo({95.0: 200.0}),
                    Budget(2, 2**30, "test", "test"), [], 8.0, None, 1)  # fmt: skip
    doc = report.document(args, IO, s.candidates, v, 400.0, (0.5, 0.7))
    for role in ("recommended", "baseline"):
        assert all(k in doc[role] for k in RECOMMENDATION_KEYS)
    assert doc["baseline"]["workers"] == 5 and doc["margin"] == v.margin
    assert {c["status"] for c in doc["candidates"]} >= {"measured", "pruned"}
    rendering.write(tmp_path, doc)
    md = (tmp_path / "recommendation.md").read_text().splitlines()
    assert md[0] == "# Which configuration should I run?" and md[2] == v.headline[0]
    assert (tmp_path / "recommendation.html").read_text().count("data:image/png;base64,") == 2
