"""The recommendation, its margin over the baseline, the sentence why -- or the honest verdict.  Pure.

- Recommended: the measured candidate with the highest rate at the objectives
  whose measured memory fits the budget; rates within ``search.TIE`` of each
  other are a tie, and the smaller memory wins.
- Margin: its rate over the baseline's.  When their intervals (from several
  rounds) overlap, the text says the two are within each other's intervals.
- Why: from the calibration -- an app that waits (I/O share >= ``IO_BOUND``)
  gains capacity from threads at a thread's memory; an app that computes gains
  only from processes, one core each.
- Nothing meets the objectives: the binding limit is the app's own latency
  (alone on the server it misses them), memory (a candidate met them but does
  not fit), else CPU (no candidate met them even at the lowest rate tried).

What this module does not know: how figures were measured or rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.measure.stats import overlap
from loadtest.tune.budget import Budget, Slo
from loadtest.tune.candidates import THREAD_STEPS, WORKER_STEPS
from loadtest.tune.model import Calibration, app_misses
from loadtest.tune.search import TIE, Candidate

IO_BOUND = 0.5


@dataclass
class Verdict:
    recommended: Candidate | None
    baseline: Candidate
    margin: float | None  # recommended rate / baseline rate
    within_intervals: bool
    why: str
    binding: str  # "" when something is recommended, else app latency | memory | cpu
    headline: list[str]


def spans(*cands: Candidate) -> str:
    """'0-608 vs 47-53 req/s': the rounds' ranges of the rate at the objectives."""
    ranges = [c.interval or (c.rate_at_slo, c.rate_at_slo) for c in cands]
    return " vs ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in ranges) + " req/s"


def pick(cands: Sequence[Candidate], memory_mb: float) -> Candidate | None:
    fitting = [c for c in cands if c.status == "measured" and c.rate_at_slo > 0 and c.fits(memory_mb)]
    if not fitting:
        return None
    top = max(c.rate_at_slo for c in fitting)
    close = [c for c in fitting if c.rate_at_slo >= (1 - TIE) * top]
    return min(close, key=lambda c: (c.memory_mb or float("inf"), c.shape.workers))


def describe(c: Candidate) -> str:
    s = c.shape
    threads = "a thread per connection" if s.threads is None else f"{s.threads} thread{'s' * (s.threads > 1)}"
    return f"{s.family.server} {s.family.worker_class}, {s.workers} worker{'s' * (s.workers > 1)} x {threads}"


def lanes(rec: Candidate, thread_mb: float) -> str:
    """What holds one more request in the recommended shape, and what it costs (a thread was calibrated)."""
    if rec.shape.family.worker_class == "gevent":
        return f"greenlets add capacity at less than a thread's {thread_mb:.1f} MB each"
    return f"threads add capacity at {thread_mb:.1f} MB each"


def why(cal: Calibration, rec: Candidate, budget: Budget) -> str:
    if cal.io_share >= IO_BOUND:
        return (
            f"the app waits {cal.io_share:.0%} of each request (CPU {cal.cpu_s * 1000:.1f} ms of "
            f"{cal.wall_s * 1000:.0f} ms), so {lanes(rec, cal.thread_mb)} "
            f"while a worker process costs {cal.worker_mb:.0f} MB"
        )
    return (
        f"the app computes {1 - cal.io_share:.0%} of each request (CPU {cal.cpu_s * 1000:.1f} ms of "
        f"{cal.wall_s * 1000:.1f} ms), so only processes add capacity "
        "-- one core of Python each, by the GIL -- "
        f"and {rec.shape.workers} worker{'s' * (rec.shape.workers > 1)} use the {budget.cpus} allowed "
        f"core{'s' * (budget.cpus > 1)}"
    )


def binding(cal: Calibration, slo: Slo, cands: Sequence[Candidate], memory_mb: float) -> str:
    if app_misses(cal, slo.limits):
        own = ", ".join(f"p{q:g} {cal.app_ms.get(q, 0):.0f} ms" for q in sorted(slo.limits))
        return f"the app's own latency: alone on the server it takes {own} ({slo.text()})"
    over = [c for c in cands if c.status == "measured" and c.rate_at_slo > 0 and not c.fits(memory_mb)]
    if over:
        c = min(over, key=lambda c: c.memory_mb or 0)
        return f"memory: {c.key} met the objectives but used {c.memory_mb:.0f} MB > budget {memory_mb:.0f} MB"
    killed = [c for c in cands if any(r.box.get("oom_kills") or r.box.get("oom_killed") for r in c.rounds)]
    if killed:
        keys = ", ".join(c.key for c in killed)
        return f"memory: the OOM killer killed {keys} at the {memory_mb:.0f} MiB limit"
    return "CPU: no candidate met the objectives even at the lowest arrival rate tried"


def verdict(
    cands: Sequence[Candidate], base: Candidate, cal: Calibration, budget: Budget, slo: Slo, app: str
) -> Verdict:
    rec = pick(cands, budget.memory_mb)
    base_fits = base.fits(budget.memory_mb)
    base_note = (
        ""
        if base_fits
        else (
            f" (the baseline does not fit in {budget.memory_mb:.0f} MB: it used {base.memory_mb or 0:.0f} MB)"
        )
    )
    if rec is None:
        limit = binding(cal, slo, cands, budget.memory_mb)
        headline = [
            f"No configuration met {slo.text()} within {budget.cpus} CPU and {budget.memory_mb:.0f} MB.",
            f"The binding limit is {limit}.{base_note}",
        ]
        return Verdict(None, base, None, False, "", limit, headline)
    margin = rec.rate_at_slo / base.rate_at_slo if base.rate_at_slo > 0 else None
    within = rec is not base and overlap(rec.interval, base.interval) and len(rec.rates()) > 1
    reason = why(cal, rec, budget)
    mem = f"{rec.memory_mb:.0f} MB" if rec.memory_mb is not None else "memory unknown"
    first = (
        f"Recommended: {rec.shape.deploy_command(app)} -- {rec.rate_at_slo:.0f} req/s at {slo.text()}, {mem}."
    )
    if rec is base:
        second = "That is the baseline itself: nothing measured beat gunicorn sync (2 x cpus) + 1."
    elif margin is None:
        second = (
            f"The baseline (gunicorn sync, {base.shape.workers} workers) met the objectives at no rate tried."
        )
    else:
        second = (
            f"{margin:.1f}x the baseline gunicorn sync -w {base.shape.workers} "
            f"({base.rate_at_slo:.0f} req/s)"
            + (f" -- but within each other's intervals ({spans(rec, base)})" if within else "")
            + "."
        )
    headline = [first, second + base_note, f"Why: {reason}."]
    return Verdict(rec, base, margin, within, reason, "", headline)


def one_step(a: int | None, b: int | None, steps: Sequence[int]) -> bool:
    """Whether two counts are equal or neighbours on the grid (None = per connection: equal only to None)."""
    if a is None or b is None:
        return a == b
    grid = sorted({*steps, a, b})
    return abs(grid.index(a) - grid.index(b)) <= 1


def same_shape(a: dict, b: dict) -> bool:
    """Same target and worker class, workers and threads within one step of the search's grid."""
    return (
        a["target"] == b["target"]
        and a["worker_class"] == b["worker_class"]
        and one_step(a["workers"], b["workers"], WORKER_STEPS)
        and one_step(a["threads"], b["threads"], THREAD_STEPS)
    )


def against(previous: dict, now: dict) -> str:
    """One sentence: does this run agree with an earlier one (``rerun.sh`` passes ``--against``)?"""
    a, b = previous.get("recommended"), now.get("recommended")
    if a is None or b is None:
        return "same verdict as the earlier run" if a is b else "a different verdict from the earlier run"
    if same_shape(a, b):
        return f"same shape as the earlier run ({a['key']} then, {b['key']} now)"
    ia = a.get("rate_at_slo_interval") or [a["rate_at_slo"]] * 2
    ib = b.get("rate_at_slo_interval") or [b["rate_at_slo"]] * 2
    shapes = f"another shape than the earlier run ({a['key']} then, {b['key']} now)"
    if overlap(ia, ib):
        spans = f"{ia[0]:.0f}-{ia[1]:.0f} vs {ib[0]:.0f}-{ib[1]:.0f} req/s"
        return f"{shapes}, but the two are within each other's intervals ({spans})"
    return f"{shapes}, beyond the intervals"
