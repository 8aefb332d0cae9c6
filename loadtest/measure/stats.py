"""Statistics over repeated rounds: exact percentiles, intervals of the median, stability.

A comparison measures every row N times (rounds).  This module turns the N
per-round figures into one median and an interval, decides whether the row
was stable, and whether two rows differ beyond their intervals.

Policy, stated once:

- ``percentile`` interpolates linearly between order statistics, as numpy's
  default method does, so p95 of our own per-request records is exact rather
  than a histogram bucket.
- The interval of the median (``bootstrap_ci``) follows one rule by sample
  size.  For N <= ``SMALL_N`` rounds it is min..max of the rounds: no
  resampling method can say more with so few values, and min..max contains
  the true median with probability 1 - 2 * 0.5**N (75% for N=3, 87.5% for 4,
  94% for 5; ``coverage``).  For larger N it is a seeded percentile bootstrap.
  The key is still named ``<metric>_ci95``; the report states the coverage.
- A row is *unstable* when the interval of a headline metric is wider than
  ``UNSTABLE_SPREAD`` of its median and than the metric's ``NOISE_FLOOR``.
- Two rows differ *significantly* when their intervals do not overlap.  With
  N=3 per side and no real change this happens by chance in 2 of the
  C(6,3)=20 orderings, i.e. 10% of the time per metric (``chance_disjoint``;
  33% with N=2); the diff therefore judges a row by one metric (requests/s),
  not by any of several, and only from 3 rounds a side.

Pure functions, standard library only.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence

from loadtest.registry.records import CI_SUFFIX, number

METRICS = (
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "avg_ms",
    "server_cpu_cores",
    "server_mem_mb",
    "generator_cpu",
    "max_in_flight",
    "cpu_ms_mean",
    "app_ms_mean",
    "wall_per_cpu",
    "request_cores",
)
HEADLINE = ("rps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_cores", "server_mem_mb")
# Stability is judged on what a reader compares; generator CPU and in-flight counts
# vary from round to round without making the figures less trustworthy.
STABILITY_METRICS = ("rps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_cores")
UNSTABLE_SPREAD = 0.10
# Below these amounts a difference is no difference, whatever its share: an io server uses
# ~0.01 cores, so 0.01 vs 0.02 is "+100%" of nothing.  A spread or a change counts only when it
# exceeds both its share of the median and this floor (``exceeds``).
NOISE_FLOOR = {
    "server_cpu_cores": 0.05,
    "server_mem_mb": 5.0,
    "p50_ms": 1.0,
    "p95_ms": 1.0,
    "p99_ms": 1.0,
    "avg_ms": 1.0,
}
SMALL_N = 5


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between order statistics; None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    data = sorted(values)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def coverage(n: int, level: float = 0.95) -> float:
    """Probability that the interval ``bootstrap_ci`` returns for n values contains the true median."""
    if n <= 1:
        return 0.0
    if n <= SMALL_N:
        return 1.0 - 2.0 * 0.5**n
    return level


def bootstrap_ci(
    values: Sequence[float],
    stat: Callable[[Sequence[float]], float] = statistics.median,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Interval of ``stat`` over ``values``: min..max for N <= SMALL_N, else a seeded percentile bootstrap.

    Same values and seed, same interval.  One value gives (v, v), which is a
    point, not an interval; callers that compare intervals must know N.
    """
    data = [float(v) for v in values]
    if not data:
        return None
    if len(data) <= SMALL_N:
        return min(data), max(data)
    rng = random.Random(seed)
    estimates = [stat(rng.choices(data, k=len(data))) for _ in range(resamples)]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = percentile(estimates, tail), percentile(estimates, 100.0 - tail)
    assert low is not None and high is not None
    centre = stat(data)
    # The percentile bootstrap can exclude the estimate itself for skewed statistics; keep it inside.
    return min(low, centre), max(high, centre)


def numbers(per_round: Sequence[dict], metric: str) -> list[float]:
    """The metric's values over the rounds, skipping rounds where it is missing or not a number."""
    values = (number(record.get(metric)) for record in per_round)
    return [v for v in values if v is not None]


def exceeds(metric: str, amount: float, median: float, share: float) -> bool:
    """Whether ``amount`` (a spread or a change) is above ``share`` of |median| and the metric's floor."""
    return abs(amount) > max(share * abs(median), NOISE_FLOOR.get(metric, 0.0))


def relative_spread(median: float | None, ci: Sequence[float] | None) -> float | None:
    """Width of the interval as a share of the median; None when the median is 0 or unknown."""
    if median is None or ci is None or median == 0:
        return None
    return (ci[1] - ci[0]) / abs(median)


def summarize(per_round: list[dict], metrics: Sequence[str] = METRICS) -> dict:
    """Median and interval per metric over the rounds, plus the stability verdict.

    For each metric present in at least one round: ``m`` = median of the rounds
    (missing values ignored, None when no round has it) and ``m_ci95`` =
    [low, high] or None.  ``unstable_metrics`` lists the STABILITY_METRICS whose
    interval is wider than UNSTABLE_SPREAD of the median and than NOISE_FLOOR.
    """
    out: dict = {}
    unstable: list[str] = []
    for metric in metrics:
        if not any(metric in record for record in per_round):
            continue
        values = numbers(per_round, metric)
        median = statistics.median(values) if values else None
        ci = bootstrap_ci(values)
        out[metric] = median
        out[metric + CI_SUFFIX] = list(ci) if ci is not None else None
        wide = (
            median is not None and ci is not None and exceeds(metric, ci[1] - ci[0], median, UNSTABLE_SPREAD)
        )
        if metric in STABILITY_METRICS and wide:
            unstable.append(metric)
    out["unstable"] = bool(unstable)
    out["unstable_metrics"] = unstable
    return out


def overlap(a_ci: Sequence[float] | None, b_ci: Sequence[float] | None) -> bool:
    """Whether two closed intervals share a point; an unknown interval counts as overlapping (no claim)."""
    if a_ci is None or b_ci is None:
        return True
    return a_ci[0] <= b_ci[1] and b_ci[0] <= a_ci[1]


def chance_disjoint(n_a: int, n_b: int) -> float | None:
    """Chance that min..max intervals of n_a and n_b rounds of one unchanged server do not overlap.

    Disjoint means every round of one run is below every round of the other:
    2 of the C(n_a + n_b, n_a) equally likely orderings.  Only for min..max
    intervals (both N <= SMALL_N); None otherwise.
    """
    if not (1 <= n_a <= SMALL_N and 1 <= n_b <= SMALL_N):
        return None
    return min(2.0 / math.comb(n_a + n_b, n_a), 1.0)


def significant(a_ci: Sequence[float] | None, b_ci: Sequence[float] | None) -> bool:
    """A difference is significant when both intervals are known and do not overlap.

    This is stricter than "each median lies outside the other's interval":
    disjoint intervals imply that, not the reverse.  Pass None for a side
    measured in fewer than two rounds -- a single round has no interval.
    """
    return a_ci is not None and b_ci is not None and not overlap(a_ci, b_ci)
