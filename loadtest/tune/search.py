"""Which shapes to measure, in what order, within the time budget.  Pure policy.

1. Predict every grid shape of every family (``model.predict``); prune those whose
   predicted memory exceeds the budget, and within a family every shape that is
   not its *knee*: the smallest-memory shape reaching ``KNEE`` of the family's
   best predicted rate (more workers or threads past the bound add memory, not
   capacity).
2. Measure the folklore baseline first (always, even when it does not fit: the
   report says so), then one knee of every *kind* (``candidates.KINDS``:
   processes, threads, greenlets, native threads) not measured yet, then the
   best single-process knee (the contrast that shows what the GIL costs), then
   the other knees (our own models last), best predicted first, skipping a knee
   whose prediction is below ``HOPELESS`` of the best rate measured so far
   (never a kind's first, and no time is kept back for step 5 before every kind
   has had its first).
3. After every measurement the model learns (``model.learn``) and the measured
   family is planned again: a shape that beat its prediction widely raises its
   bigger shapes, whose new knee is measured in turn.
4. Refine around the best measured shape: its grid neighbours (workers a step
   up or down, threads doubled or halved) while they beat it.
5. Confirm: more rounds of the best shape and of the baseline, so both have an
   interval.
A measurement is ``measure(shape, rates)``, one ladder on a fresh server; when
every step passed, a ladder above it follows (the figure was only a floor) --
unless the generator was at its limit, which a higher ladder cannot pass.
Time for step 5 is kept back from the start (``confirm_reserve``).  The kinds the
budget did not reach are named, with the time that would reach them.

What this module does not know: how a measurement is made (it is handed a
function), so tests drive it with synthetic measurements and a fake clock.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loadtest.tune import ladder
from loadtest.tune.calibrate import Calibration
from loadtest.tune.candidate import Candidate, Round, Status, allow
from loadtest.tune.candidates import KINDS, Family, Shape, baseline, neighbours, shapes
from loadtest.tune.floors import Stop, may_tie
from loadtest.tune.model import learn, learn_memory, predict

KNEE = 0.97
HOPELESS = 0.5
FINE_SHARE = 0.85  # a confirming (fine) ladder costs about this share of a first one
CONFIRM_ROUNDS = 2  # extra rounds of the best shape and of the baseline
MAX_EXTENSIONS = 3  # ladders upward after a top step passed (each to 2.5x its bottom)
COST_MARGIN = 1.25  # a measurement may take this much longer than the median so far
DEFAULT_COST_S = 45.0  # a measurement's cost before one has been timed
FIRST_ROUNDS = 2  # a first measurement may take two ladders (a wide one, then above or below)


def tied(cands: Sequence[Candidate], memory_mb: float) -> list[Candidate]:
    """The best measured candidate and those the measurements cannot separate from it, smallest
    memory first: the first is the one to recommend (measured, met the objectives, fits, may be
    recommended)."""
    fitting = [
        c for c in cands
        if c.status == Status.MEASURED and c.rate_at_slo > 0 and c.fits(memory_mb) and c.recommendable
    ]  # fmt: skip
    if not fitting:
        return []
    top = max(fitting, key=lambda c: c.rate_at_slo)
    # a floor is never tied with a measured rate (floors.may_tie): one is known, the other is not
    close = [
        c for c in fitting
        if c is top or (may_tie(c.lower_bound, top.lower_bound) and c.could_reach(top.rate_at_slo))
    ]  # fmt: skip
    return sorted(close, key=lambda c: (c.memory_mb or float("inf"), c.shape.workers))


def single_process(shape: Shape) -> bool:
    """One process running several requests at once (threads or a thread per connection)."""
    return shape.workers == 1 and (shape.threads is None or shape.threads > 1)


Measure = Callable[[Shape, list[float]], Round]
Clock = Callable[[], float]
Say = Callable[[str], None]


def plan_family(cands: list[Candidate], memory_mb: float) -> None:
    """Prune all but the family's knee (and what does not fit); measured shapes keep their status."""
    fitting = [c for c in cands if c.prediction.memory_mb <= memory_mb]
    for c in cands:
        if not c.status.tried and c not in fitting:
            mb = c.prediction.memory_mb
            c.status, c.why = Status.PRUNED, f"predicted {mb:.0f} MB > budget {memory_mb:.0f} MB"
    if not fitting:
        return
    best = max(c.prediction.rate for c in fitting)
    knee = min((c for c in fitting if c.prediction.rate >= KNEE * best), key=lambda c: c.prediction.memory_mb)
    for c in fitting:
        if c.status.tried:
            continue
        if c is knee:
            rate, bound = c.prediction.rate, c.prediction.bound
            c.status = Status.PENDING
            c.why = f"knee of {c.shape.family.name}: predicted {rate:.0f} req/s ({bound}-bound)"
        elif c.prediction.rate < knee.prediction.rate * KNEE:
            c.status, c.why = Status.PRUNED, f"predicted {c.prediction.rate:.0f} req/s < knee {knee.key}"
        else:
            c.status, c.why = (
                Status.PRUNED,
                f"no predicted gain over {knee.key} ({knee.prediction.bound}-bound), more memory",
            )


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
        plan_family(cands, memory_mb)
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
    cal: Calibration
    cpus: int
    limits: dict[float, float]
    say: Say = print
    recommendable: tuple[str, ...] = ()  # targets the verdict may recommend (empty: all)
    costs: list[float] = field(default_factory=list)

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
        cand.status = Status.FAILED if result.error and not cand.rates() else Status.MEASURED
        if result.error:
            cand.why = result.error
        if result.memory_mb is not None:
            learn_memory(self.cal, cand.shape, result.memory_mb, cand.prediction.memory_mb)
        rate, _, top = result.figure()
        limit = " -- at the load generator's limit: a lower bound" if result.at_generator_limit else ""
        self.say(
            f"  {cand.key}: {'at least ' if result.lower_bound else ''}{rate:g} req/s at the objectives"
            f"{' (every step passed)' if top else ''}{limit}, {result.memory_mb or 0:.0f} MB"
        )
        return result

    def measure_first(self, cand: Candidate, reserve: float) -> None:
        """A wide ladder around the prediction; upwards again if every step passed; downwards if none did.

        The second ladder replaces the first only when it found a higher figure
        (a noisy bottom step of the upward ladder must not erase a measured rate).
        Afterwards the model learns from the figure and the family is planned again.
        """
        guess = max(cand.prediction.rate, ladder.MIN_RATE * 4)
        first = self.run(cand, ladder.first_ladder(guess), cand.why or "promising")
        rate, _, top = first.figure()
        if top:
            self.extend(cand, first, 0.0 if cand.is_baseline else reserve)
        elif not first.error and rate == 0 and not first.at_generator_limit and self.affordable(reserve):
            second = self.run(
                cand, ladder.first_ladder(guess * ladder.FIRST_LOW / 2), "no step passed: lower"
            )
            self.keep_higher(cand, first, second)
        self.learn_from(cand)

    @staticmethod
    def keep_higher(cand: Candidate, one: Round, other: Round) -> Round:
        """Keep the round with the higher figure (a noisy bottom step must not erase a measured rate)."""
        keep, drop = (other, one) if other.figure()[0] > one.figure()[0] else (one, other)
        cand.rounds = [r for r in cand.rounds if r is not drop]
        return keep

    def extend(self, cand: Candidate, result: Round, reserve: float) -> Round:
        """A ladder whose top step passed, extended upward (``ladder.above``) until a step fails.

        Until then its figure is a floor.  What stopped the extension is kept on the
        candidate (``floors.Stop``): the generator at its limit, the time budget (the
        baseline may use the confirming rounds' reserve: a floor baseline makes every
        margin unreadable), or ``MAX_EXTENSIONS`` ladders up.
        """
        for _ in range(MAX_EXTENSIONS):
            rate, _, top = result.figure()
            if result.error or not top:
                cand.stopped = None
                return result
            if result.at_generator_limit:
                cand.stopped = Stop.GENERATOR
                return result
            if not self.affordable(reserve):
                cand.stopped = Stop.TIME_BUDGET
                return result
            higher = self.run(cand, ladder.above(rate), "every step passed: higher")
            result = self.keep_higher(cand, result, higher)
            if result is not higher:
                break  # the higher ladder found less: its bottom was noisy, the floor stands
        cand.stopped = None if not result.figure()[2] else Stop.LADDER_TOP
        return result

    def learn_from(self, cand: Candidate) -> None:
        """Correct the model by the candidate's figure, then re-predict and re-plan its family."""
        if not cand.rates():
            return
        now = predict(cand.shape, self.cal, self.cpus, self.limits)  # with what was learnt so far
        factor = learn(self.cal, cand.shape, cand.rate_at_slo, now, cand.lower_bound)
        if factor is None:
            return
        family = [c for c in self.candidates if c.shape.family.name == cand.shape.family.name]
        for c in family:
            if not c.status.tried:
                c.prediction = predict(c.shape, self.cal, self.cpus, self.limits)
        before = {c.key for c in family if c.status == Status.PENDING}
        plan_family(family, self.memory_mb)
        for c in family:
            if c.status == Status.PENDING and c.key not in before:
                c.why = (
                    f"re-predicted {c.prediction.rate:.0f} req/s after {cand.key} measured "
                    f"{cand.rate_at_slo:.0f} (predicted {cand.prediction.rate:.0f})"
                )
                self.say(f"  learnt: {c.key} {c.why}")

    def confirm_reserve(self) -> float:
        """Time kept for the confirming rounds of the best shape and the baseline (shorter ladders)."""
        return CONFIRM_ROUNDS * 2 * FINE_SHARE * self.cost()

    def best(self) -> Candidate | None:
        close = tied(self.candidates, self.memory_mb)
        return close[0] if close else None

    def measured_kinds(self) -> set[str]:
        """Kinds with a measured shape of a server the verdict may recommend (the contrast does not count)."""
        return {c.shape.family.kind for c in self.candidates if c.status.tried and c.recommendable}

    def unmeasured_kinds(self) -> list[str]:
        """The kinds among the recommendable candidates with no measured shape (in ``KINDS`` order)."""
        present = {c.shape.family.kind for c in self.candidates if c.recommendable}
        done = self.measured_kinds()
        return [k for k in KINDS if k in present and k not in done]

    def next_pending(self, contrast: Candidate | None) -> Candidate | None:
        pending = [c for c in self.candidates if c.status == Status.PENDING]
        if not pending:
            return None
        done = self.measured_kinds()

        def order(c: Candidate) -> tuple[bool, bool, bool, float]:
            """A kind's first shape, then the contrast, then the rest (our own models last); best first."""
            ours = not c.recommendable
            return (c.shape.family.kind in done or ours, c is not contrast, ours, -c.prediction.rate)

        return min(pending, key=order)

    def explore(self, base: Candidate) -> None:
        self.measure_first(base, self.confirm_reserve())
        contrast = self.contrast()
        if contrast is not None:
            contrast.status = Status.PENDING
            contrast.why = (
                "the contrast: one process (one core of Python, whatever holds its requests), "
                "measured whatever its prediction"
            )
        while (cand := self.next_pending(contrast)) is not None:
            best = self.best()
            first_of_kind = cand.recommendable and cand.shape.family.kind not in self.measured_kinds()
            hopeless = best is not None and cand.prediction.rate < HOPELESS * best.rate_at_slo
            if hopeless and cand is not contrast and not first_of_kind:
                cand.status = Status.PRUNED
                cand.why = (
                    f"predicted {cand.prediction.rate:.0f} req/s < {HOPELESS:g} x measured best "
                    f"{best.rate_at_slo:.0f} ({best.key})"
                )
                continue
            # a kind's first shape comes before the interval rounds: no time is kept back for them
            reserve = 0.0 if first_of_kind else self.confirm_reserve()
            if not self.affordable(reserve):  # a kind's first shape, kept no reserve, may still fit
                cand.status, cand.why = (
                    Status.NOT_REACHED,
                    (cand.why + "; " if cand.why else "") + "time budget spent",
                )
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
                if cand.status == Status.MEASURED or cand.prediction.memory_mb > self.memory_mb:
                    continue
                if not self.affordable(self.confirm_reserve()):
                    return
                cand.why = f"neighbour of the best so far ({best.key})"
                self.measure_first(cand, self.confirm_reserve())

    def lookup(self, shape: Shape) -> Candidate:
        for c in self.candidates:
            if c.key == shape.key:
                return c
        cand = Candidate(shape, predict(shape, self.cal, self.cpus, self.limits))
        allow([cand], self.recommendable)
        self.candidates.append(cand)
        return cand

    def confirm(self, cands: Sequence[Candidate]) -> None:
        for _ in range(CONFIRM_ROUNDS):
            for cand in cands:
                rate = cand.rate_at_slo
                if rate <= 0 or not self.affordable(0.0):
                    continue
                extra = self.run(cand, ladder.fine_ladder(rate), "another round, for an interval")
                if extra.figure()[2]:
                    self.extend(cand, extra, 0.0)

    def seconds_for_unmeasured(self) -> float:
        """Time one first measurement of each unmeasured kind would take, at the cost seen so far."""
        return len(self.unmeasured_kinds()) * FIRST_ROUNDS * COST_MARGIN * self.cost()


def search(
    candidates: list[Candidate],
    *,
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
    recommendable: tuple[str, ...] = (),
) -> Search:
    s = Search(
        candidates=candidates,
        measure=measure,
        clock=clock,
        deadline=deadline,
        memory_mb=memory_mb,
        max_workers=max_workers,
        cal=cal,
        cpus=cpus,
        limits=limits,
        say=say,
        recommendable=recommendable,
    )
    allow(candidates, recommendable)
    base = s.lookup(base_shape)
    base.is_baseline = True
    base.why = "the folklore baseline: gunicorn sync, (2 x cpus) + 1 workers"
    if base.status == Status.PRUNED:
        base.status = Status.PENDING
    s.explore(base)
    s.refine()
    best = s.best()
    s.confirm([base] if best is None or best is base else [best, base])
    for cand in s.candidates:
        if cand.status == Status.PENDING:
            cand.status, cand.why = (
                Status.NOT_REACHED,
                (cand.why + "; " if cand.why else "") + "time budget spent",
            )
    return s


__all__ = ["Search", "baseline", "predicted", "search", "tied"]
