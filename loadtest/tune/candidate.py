"""Tune's records of one search: a candidate shape, its prediction, its status, and each round measured.

The search (``search.py``) decides a candidate's status and the trials (``trial.py``)
make its rounds; both import these types from here, so the measurer does not depend on
the policy.  ``Status`` is the record's vocabulary (``registry.records``: the renderer
reads it too).

What this module does not know: how a round is measured, or which shapes are worth it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from loadtest.measure import stats
from loadtest.registry.records import Status
from loadtest.run.runner import Envelope
from loadtest.tune import ladder
from loadtest.tune.candidates import Shape
from loadtest.tune.floors import Stop

TIE = 0.03  # rates closer than this share are a tie (as are rates a ladder step cannot separate)


@dataclass(frozen=True)
class Prediction:
    """What ``model.predict`` expects of a shape before it is measured."""

    rate: float  # req/s at the objectives (0 when the app alone misses them)
    bound: str  # "slots" | "cpu" | "gil" | "latency"
    memory_mb: float
    in_flight: float


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
    envelope: Envelope | None = None  # runtime, quota, limit, OOM kills (None: the runner told nothing)
    # the quota's counters (periods, throttled periods, seconds throttled) over the whole ladder and
    # per judged step (aligned with ``steps``); None where the runtime imposes no quota (trial.throttling)
    throttling: dict[str, float] | None = None
    throttling_by_step: list[dict[str, float]] | None = None
    start_s: float | None = None  # seconds the server took to answer its first request

    @property
    def oom(self) -> bool:
        """The OOM killer killed something of the server's in this round."""
        e = self.envelope
        return e is not None and bool(e.oom_kills or e.oom_killed)

    def figure(self) -> tuple[float, ladder.Step | None, bool]:
        return ladder.rate_at_slo(self.steps)

    @property
    def at_generator_limit(self) -> bool:
        """The figure was set by the load generator, not the server: a lower bound."""
        _, step, _ = self.figure()
        return ladder.at_generator_limit(self.steps, step)

    @property
    def lower_bound(self) -> bool:
        """The figure is a floor: every step passed, or the generator was at its limit."""
        rate, step, top = self.figure()
        return rate > 0 and (top or ladder.at_generator_limit(self.steps, step))

    @property
    def ceiling(self) -> float | None:
        """The rate of the first failing step above the figure; None when nothing above it failed."""
        _, step, _ = self.figure()
        above = self.steps[self.steps.index(step) + 1 :] if step is not None else self.steps
        return next((s.rate for s in above if not s.passed), None)

    @property
    def generator_limit(self) -> float | None:
        """Requests/s the generator delivered at its first generator-bound step, None if never bound."""
        bound = [s for s in self.steps if s.generator_bound and s.requests]
        if not bound:
            return None
        first = min(bound, key=lambda s: s.rate)
        return (first.requests - first.missing) / first.seconds


@dataclass
class Candidate:
    shape: Shape
    prediction: Prediction
    status: Status = Status.PENDING
    why: str = ""
    rounds: list[Round] = field(default_factory=list)
    is_baseline: bool = False
    # may the verdict recommend it: every server when --servers named none but our own models
    # (cli.recommendable); search.search marks each candidate (allow), nothing else decides it
    recommendable: bool = True
    # why a ladder whose top passed went no higher (search.extend); None: nothing stopped it
    stopped: Stop | None = None

    @property
    def key(self) -> str:
        return self.shape.key

    @property
    def stop(self) -> Stop | None:
        """What left the figure a floor (generator, time budget, the ladder's top); None when measured."""
        if not self.lower_bound:
            return None
        return Stop.GENERATOR if self.at_generator_limit else (self.stopped or Stop.LADDER_TOP)

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

    def median_round(self) -> Round | None:
        rounds = sorted((r for r in self.rounds if not r.error), key=lambda r: r.figure()[0])
        return rounds[len(rounds) // 2] if rounds else None

    def at_slo(self) -> ladder.Step | None:
        """The step of the median round's figure."""
        r = self.median_round()
        return r.figure()[1] if r else None

    @property
    def lower_bound(self) -> bool:
        """The figure is a floor (``Round.lower_bound`` of the median round)."""
        r = self.median_round()
        return r is not None and r.lower_bound

    @property
    def at_generator_limit(self) -> bool:
        r = self.median_round()
        return r is not None and r.at_generator_limit

    def could_reach(self, rate: float) -> bool:
        """Whether the measurements cannot rule out ``rate``: within ``TIE``, below the first failing
        step above the figure, or the figure is a floor."""
        r = self.median_round()
        if r is None:
            return False
        ceiling = r.ceiling
        return (
            self.rate_at_slo >= (1 - TIE) * rate
            or self.lower_bound
            or (ceiling is not None and ceiling > rate)
        )

    def fits(self, memory_mb: float) -> bool:
        measured = self.memory_mb
        return (measured if measured is not None else self.prediction.memory_mb) <= memory_mb


def allow(cands: Iterable[Candidate], names: Sequence[str]) -> None:
    """Mark which candidates the verdict may recommend: those of the servers ``names`` (all when empty)."""
    for c in cands:
        c.recommendable = not names or c.shape.family.name in names


__all__ = ["TIE", "Candidate", "Prediction", "Round", "Status", "allow"]
