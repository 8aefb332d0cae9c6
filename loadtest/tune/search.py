"""Which shapes to measure, in what order, within the time budget.  Pure policy.

1. Predict every grid shape of every family (``model.predict``); prune those whose
   predicted memory exceeds the budget, and within a family every shape that is
   not its *knee*: the smallest-memory shape reaching ``KNEE`` of the family's
   best predicted rate (more workers or threads past the bound add memory, not
   capacity).
2. Measure the folklore baseline first (always, even when it does not fit: the
   report says so), then the best single-process knee (one process of threads:
   the contrast that shows what the GIL costs, measured whatever its prediction),
   then the other knees, best predicted first, skipping a knee whose prediction
   is below ``HOPELESS`` of the best rate measured so far.
3. Refine around the best measured shape: its grid neighbours (workers a step
   up or down, threads doubled or halved) while they beat it.
4. Confirm: more rounds of the best shape and of the baseline, so both have an
   interval.
A measurement is ``measure(shape, rates)``, one ladder on a fresh server; when
every step passed, a ladder above it follows (the figure was only a floor).
Time for step 4 is kept back from the start (``confirm_reserve``).

What this module does not know: how a measurement is made (it is handed a
function), so tests drive it with synthetic measurements and a fake clock.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loadtest.measure import stats
from loadtest.tune import ladder
from loadtest.tune.candidates import Family, Shape, baseline, neighbours, shapes
from loadtest.tune.model import Calibration, Prediction, learn_memory, predict

KNEE = 0.97
HOPELESS = 0.5
FINE_SHARE = 0.85  # a confirming (fine) ladder costs about this share of a first one
CONFIRM_ROUNDS = 2  # extra rounds of the best shape and of the baseline
COST_MARGIN = 1.25  # a measurement may take this much longer than the median so far
DEFAULT_COST_S = 45.0  # a measurement's cost before one has been timed
TIE = 0.03  # rates closer than this share are a tie: the smaller memory wins


@dataclass
class Round:
    """One ladder on a fresh server: what ``measure`` returns."""

    rates: list[float]
    steps: list[ladder.Step]
    memory_mb: float | None  # peak PSS of the server tree
    cpu_cores: float | None  # server cores used at the step of the rate at the objectives
    seconds: float  # wall time the round took
    error: str = ""  # the server failed to start, was OOM-killed, or the generator failed
    notes: list[str] = field(default_factory=list)
    box: dict[str, object] = field(default_factory=dict)  # runtime, limits, throttling (measure.box_record)

    def figure(self) -> tuple[float, ladder.Step | None, bool]:
        return ladder.rate_at_slo(self.steps)


@dataclass
class Candidate:
    shape: Shape
    prediction: Prediction
    status: str = "pending"  # measured | pruned | not reached | failed
    why: str = ""
    rounds: list[Round] = field(default_factory=list)
    is_baseline: bool = False

    @property
    def key(self) -> str:
        return self.shape.key

    def rates(self) -> list[float]:
        """Rate at the objectives per round (a round that topped out and was extended counts once, above)."""
        return [r.figure()[0] for r in self.rounds if not r.error]

    @property
    def rate_at_slo(self) -> float:
        values = self.rates()
        return statistics.median(values) if values else 0.0

    @property
    def interval(self) -> tuple[float, float] | None:
        ci = stats.bootstrap_ci(self.rates())
        return (ci[0], ci[1]) if ci else None

    @property
    def memory_mb(self) -> float | None:
        values = [r.memory_mb for r in self.rounds if r.memory_mb is not None]
        return max(values) if values else None

    def at_slo(self) -> ladder.Step | None:
        """The step of the median round's figure."""
        figured = sorted((r.figure() for r in self.rounds if not r.error), key=lambda f: f[0])
        return figured[len(figured) // 2][1] if figured else None

    def fits(self, memory_mb: float) -> bool:
        measured = self.memory_mb
        return (measured if measured is not None else self.prediction.memory_mb) <= memory_mb


def single_process(shape: Shape) -> bool:
    """One process running several requests at once (threads or a thread per connection)."""
    return shape.workers == 1 and (shape.threads is None or shape.threads > 1)


Measure = Callable[[Shape, list[float]], Round]
Clock = Callable[[], float]
Say = Callable[[str], None]


def predicted(
    fams: Sequence[Family],
    cal: Calibration,
    cpus: int,
    limits: dict[float, float],
    memory_mb: float,
    max_workers: int,
) -> list[Candidate]:
    """Every grid shape with its prediction; all but each family's knee pruned, with why."""
    out: list[Candidate] = []
    for fam in fams:
        cands = [Candidate(s, predict(s, cal, cpus, limits)) for s in shapes(fam, max_workers)]
        fitting = [c for c in cands if c.prediction.memory_mb <= memory_mb]
        for c in cands:
            if c.prediction.memory_mb > memory_mb:
                c.status, c.why = (
                    "pruned",
                    f"predicted {c.prediction.memory_mb:.0f} MB > budget {memory_mb:.0f} MB",
                )
        if not fitting:
            out += cands
            continue
        best = max(c.prediction.rate for c in fitting)
        knee = min(
            (c for c in fitting if c.prediction.rate >= KNEE * best), key=lambda c: c.prediction.memory_mb
        )
        for c in fitting:
            if c is knee:
                rate, bound = c.prediction.rate, c.prediction.bound
                c.why = f"knee of {fam.name}: predicted {rate:.0f} req/s ({bound}-bound)"
            elif c.prediction.rate < knee.prediction.rate * KNEE:
                c.status, c.why = "pruned", f"predicted {c.prediction.rate:.0f} req/s < knee {knee.key}"
            else:
                c.status, c.why = (
                    "pruned",
                    (f"no predicted gain over {knee.key} ({knee.prediction.bound}-bound), more memory"),
                )
        out += cands
    return out


@dataclass
class Search:
    candidates: list[Candidate]
    measure: Measure
    clock: Clock
    deadline: float
    memory_mb: float
    max_workers: int
    say: Say = print
    costs: list[float] = field(default_factory=list)
    cal: Calibration | None = None
    cpus: int = 1
    limits: dict[float, float] = field(default_factory=dict)

    # --- time
    def left(self) -> float:
        return self.deadline - self.clock()

    def cost(self) -> float:
        return statistics.median(self.costs) if self.costs else DEFAULT_COST_S

    def affordable(self, reserve: float) -> bool:
        """Whether one more measurement fits before the deadline, ``reserve`` seconds kept back."""
        return self.left() - reserve >= COST_MARGIN * self.cost()

    # --- measuring
    def run(self, cand: Candidate, rates: list[float], why: str) -> Round:
        self.say(
            f"measure {cand.key}: {why}; {len(rates)} steps {rates[0]:g}..{rates[-1]:g} req/s "
            f"(time left {self.left():.0f} s)"
        )
        result = self.measure(cand.shape, rates)
        self.costs.append(result.seconds)
        cand.rounds.append(result)
        cand.status = "failed" if result.error and not cand.rates() else "measured"
        if result.error:
            cand.why = result.error
        if self.cal is not None and result.memory_mb is not None:
            learn_memory(self.cal, cand.shape, result.memory_mb, cand.prediction.memory_mb)
        rate, _, top = result.figure()
        self.say(
            f"  {cand.key}: {rate:g} req/s at the objectives{' (every step passed)' if top else ''}, "
            f"{result.memory_mb or 0:.0f} MB"
        )
        return result

    def measure_first(self, cand: Candidate, reserve: float) -> None:
        """A wide ladder around the prediction; upwards again if every step passed; downwards if none did.

        The second ladder replaces the first only when it found a higher figure
        (a noisy bottom step of the upward ladder must not erase a measured rate).
        """
        guess = max(cand.prediction.rate, ladder.MIN_RATE * 4)
        first = self.run(cand, ladder.first_ladder(guess), cand.why or "promising")
        rate, _, top = first.figure()
        if first.error or not (top or rate == 0) or not self.affordable(reserve):
            return
        if top:
            second = self.run(cand, ladder.above(rate), "every step passed: higher")
        else:
            second = self.run(
                cand, ladder.first_ladder(guess * ladder.FIRST_LOW / 2), "no step passed: lower"
            )
        keep = second if second.figure()[0] > rate else first
        cand.rounds = [r for r in cand.rounds if r is keep or (r is not first and r is not second)]

    def confirm_reserve(self) -> float:
        """Time kept for the confirming rounds of the best shape and the baseline (shorter ladders)."""
        return CONFIRM_ROUNDS * 2 * FINE_SHARE * self.cost()

    def best(self) -> Candidate | None:
        fitting = [
            c
            for c in self.candidates
            if c.status == "measured" and c.rate_at_slo > 0 and c.fits(self.memory_mb)
        ]
        if not fitting:
            return None
        top = max(c.rate_at_slo for c in fitting)
        close = [c for c in fitting if c.rate_at_slo >= (1 - TIE) * top]
        return min(close, key=lambda c: c.memory_mb or float("inf"))

    def explore(self, base: Candidate) -> None:
        reserve = self.confirm_reserve()
        self.measure_first(base, reserve)
        queue = sorted(
            (c for c in self.candidates if c.status == "pending" and c is not base),
            key=lambda c: -c.prediction.rate,
        )
        contrast = self.contrast()
        if contrast is not None:
            contrast.status = "pending"
            contrast.why = (
                "the contrast: one process of threads (one core of Python), measured whatever its prediction"
            )
            queue = [contrast, *(c for c in queue if c is not contrast)]
        for cand in queue:
            best = self.best()
            hopeless = best is not None and cand.prediction.rate < HOPELESS * best.rate_at_slo
            if hopeless and cand is not contrast:
                cand.status = "pruned"
                cand.why = (
                    f"predicted {cand.prediction.rate:.0f} req/s < {HOPELESS:g} x measured best "
                    f"{best.rate_at_slo:.0f} ({best.key})"
                )
                continue
            if not self.affordable(self.confirm_reserve()):
                cand.status, cand.why = "not reached", "time budget spent before its turn"
                continue
            self.measure_first(cand, reserve)

    def contrast(self) -> Candidate | None:
        """The best-predicted single-process shape that fits (of equals, the one nearest 8 threads)."""
        fitting = [
            c for c in self.candidates
            if single_process(c.shape) and c.prediction.memory_mb <= self.memory_mb and not c.is_baseline
        ]  # fmt: skip
        if not fitting:
            return None
        return min(
            fitting, key=lambda c: (-round(c.prediction.rate), abs(math.log2(c.shape.threads or 8) - 3))
        )

    def refine(self) -> None:
        tried: set[str] = set()
        while True:
            best = self.best()
            if best is None or best.key in tried:
                return
            tried.add(best.key)
            for shape in neighbours(best.shape, self.max_workers):
                cand = self.lookup(shape)
                if cand.status == "measured" or cand.prediction.memory_mb > self.memory_mb:
                    continue
                if not self.affordable(self.confirm_reserve()):
                    return
                cand.why = f"neighbour of the best so far ({best.key})"
                self.measure_first(cand, self.confirm_reserve())

    def lookup(self, shape: Shape) -> Candidate:
        for c in self.candidates:
            if c.key == shape.key:
                return c
        assert self.cal is not None
        cand = Candidate(shape, predict(shape, self.cal, self.cpus, self.limits))
        self.candidates.append(cand)
        return cand

    def confirm(self, cands: Sequence[Candidate]) -> None:
        for _ in range(CONFIRM_ROUNDS):
            for cand in cands:
                rate = cand.rate_at_slo
                if rate <= 0 or not self.affordable(0.0):
                    continue
                self.run(cand, ladder.fine_ladder(rate), "another round, for an interval")


def search(
    candidates: list[Candidate],
    base_shape: Shape,
    measure: Measure,
    clock: Clock,
    deadline: float,
    memory_mb: float,
    max_workers: int,
    cal: Calibration,
    cpus: int,
    limits: dict[float, float],
    say: Say = print,
) -> Search:
    s = Search(
        candidates, measure, clock, deadline, memory_mb, max_workers, say, cal=cal, cpus=cpus, limits=limits
    )
    base = s.lookup(base_shape)
    base.is_baseline = True
    base.why = "the folklore baseline: gunicorn sync, (2 x cpus) + 1 workers"
    if base.status == "pruned":
        base.status = "pending"
    s.explore(base)
    s.refine()
    best = s.best()
    s.confirm([base] if best is None or best is base else [best, base])
    for cand in s.candidates:
        if cand.status == "pending":
            cand.status, cand.why = "not reached", (cand.why + "; " if cand.why else "") + "time budget spent"
    return s


__all__ = ["Candidate", "Round", "Search", "baseline", "predicted", "search"]
