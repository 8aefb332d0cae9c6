"""The diff rule, stated once: when a figure changed from run A to run B beyond the noise.

A metric's change is *significant* when both sides have at least ``MIN_ROUNDS`` rounds, their
intervals do not overlap (``stats.significant``) and the change is at least ``MIN_CHANGE`` of A's
median (and above the metric's noise floor, ``stats.exceeds``). Fewer rounds leave too much to
chance: two min..max intervals of 2 rounds each miss each other a third of the time with no change
at all (``stats.chance_disjoint``); 3 rounds bring it to 10%. A row's verdict follows one metric
(its kind's ``VERDICT_METRIC``): judging a row on any of several metrics would flag unchanged rows
by chance far too often. Comparisons and bench runs are judged by this rule alike.

Reads rows through their record types (``loadtest.registry.records``); knows nothing of how a diff is shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

from loadtest.measure import stats

MIN_ROUNDS = 3
MIN_CHANGE = 0.05
LOWER_IS_BETTER = frozenset(
    {"p50_ms", "p95_ms", "p99_ms", "avg_ms", "server_cpu_cores", "server_mem_mb", "cpu_us"}
)
# The metric a row's verdict follows, per kind of run: a comparison's requests/s (closed loop:
# throughput and latency move together); a bench's CPU per request (it moves far less than
# requests/s with the share of a busy machine the server was given).
VERDICT_METRIC = {"comparison": "rps", "bench": "cpu_us"}
TOO_FEW = f"fewer than {MIN_ROUNDS} rounds: cannot tell"


class Sample(Protocol):
    """A row of either kind of run, as ``loadtest.registry.records`` types it."""

    @property
    def round_count(self) -> int: ...

    @property
    def failed(self) -> str: ...

    def value(self, metric: str) -> float | None: ...

    def interval(self, metric: str) -> tuple[float, float] | None: ...


@dataclass(frozen=True)
class Change:
    """How one metric moved from A to B; ``direction`` is better/worse when significant, else ''."""

    a: float | None
    b: float | None
    a_ci95: list[float] | None
    b_ci95: list[float] | None
    change: float | None
    change_pct: float | None
    significant: bool
    direction: str

    def as_dict(self) -> dict:
        return asdict(self)


def judged(a: Sample, b: Sample) -> bool:
    """Enough rounds on both sides for a verdict."""
    return min(a.round_count, b.round_count) >= MIN_ROUNDS


def figure(row: Sample, metric: str) -> tuple[float | None, list[float] | None]:
    """(median, interval) of a metric; no figure for a failed row."""
    value = row.value(metric)
    if row.failed or value is None:
        return None, None
    ci = row.interval(metric)
    return value, list(ci) if ci else None


def change(metric: str, a: Sample, b: Sample) -> Change:
    a_val, a_ci = figure(a, metric)
    b_val, b_ci = figure(b, metric)
    delta = b_val - a_val if a_val is not None and b_val is not None else None
    pct = delta / a_val if delta is not None and a_val else None
    material = delta is not None and stats.exceeds(metric, delta, a_val, MIN_CHANGE)
    sig = judged(a, b) and material and stats.significant(a_ci, b_ci)
    direction = ""
    if sig:
        better = (delta < 0) if metric in LOWER_IS_BETTER else (delta > 0)
        direction = "better" if better else "worse"
    return Change(a_val, b_val, a_ci, b_ci, delta, pct, sig, direction)


def verdict(a: Sample, b: Sample, verdict_change: Change) -> str:
    """The row's verdict from its verdict metric's change, in the words every diff prints."""
    failed = [side for side, row in (("A", a), ("B", b)) if row.failed]
    if failed:
        return "failed in " + " and ".join(failed)
    if not judged(a, b):
        return f"{TOO_FEW} ({a.round_count} and {b.round_count})"
    if verdict_change.significant:
        return f"significant ({verdict_change.direction})"
    return "no clear change (intervals overlap)"


def chance(a: Sample, b: Sample) -> float | None:
    """Chance that an unchanged row's intervals are disjoint at these rounds (min..max intervals only)."""
    return stats.chance_disjoint(a.round_count, b.round_count)


def headline(judged_rows: int, significant: int, chances: set[float], metric_label: str) -> str:
    """The diff's first sentence: how many judged rows changed, or that none could be judged."""
    if not judged_rows:
        return f"No row to judge, {TOO_FEW} (need {MIN_ROUNDS} a side): nothing is called significant"
    by_chance = f" (by chance alone about {max(chances):.0%} of unchanged rows would be)" if chances else ""
    return (
        f"{significant} of {judged_rows} rows with {MIN_ROUNDS}+ rounds on both sides changed "
        f"significantly in {metric_label}{by_chance}"
    )
