"""The recommendation, its margin over the baseline, the sentence why -- or the honest verdict.  Pure.

- Recommended: the measured candidate with the highest rate at the objectives
  whose measured memory fits the budget, among the servers it may recommend
  (our own models only when ``--servers`` named them); candidates the
  measurements cannot separate (``search.tied``: within ``TIE``, inside one
  ladder step, or floors) are a tie, named as such, and the smaller memory wins.
- A figure set by the load generator (or with every step passing) is a lower
  bound: "at least", in the headline, the margin and the record.
- Margin: its rate over the baseline's.  When their intervals (from several
  rounds) overlap, the text says the two are within each other's intervals.
- Why: from the recommended shape and the same figures -- requests in flight
  at its rate (Little's law: rate x mean time in the app), per process, and
  what holds them (threads, greenlets, or one process each).
- The binding limit (``Binding``: a ``BindingKind`` and its sentence; the record keeps
  the sentence), when nothing is recommended, the first that holds: the app's own errors
  (seen in calibration: the run stops there), the app's own latency, memory (a shape
  over the budget, or one the OOM killer struck under a memory limit), the time budget
  (only the baseline measured), the app's errors under load, else CPU.

What this module does not know: how figures were measured or rendered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from loadtest.measure.stats import overlap
from loadtest.registry.records import Configuration
from loadtest.tune.calibrate import Calibration
from loadtest.tune.candidate import TIE, Candidate, Status
from loadtest.tune.candidates import THREAD_STEPS, WORKER_STEPS
from loadtest.tune.floors import Stop, margin_words, stopped_text
from loadtest.tune.model import app_misses
from loadtest.tune.search import tied
from loadtest.tune.settings import Budget, Slo
from loadtest.tune.sharing import Sharing

IO_BOUND = 0.5


class BindingKind(StrEnum):
    """What limited a run that recommends nothing, in the order ``binding`` tries them."""

    APP_ERRORS = "app errors"  # the app's own errors, seen in calibration: the run stops there
    APP_LATENCY = "app latency"  # alone on the server the app misses the objectives
    MEMORY = "memory"  # a shape met the objectives over the budget, or the OOM killer struck
    TIME_BUDGET = "time budget"  # only the baseline was measured
    ERRORS_UNDER_LOAD = "errors under load"  # error answers failed the lowest step tried
    CPU = "CPU"  # none of the above: no shape met the objectives at the lowest rate tried


@dataclass(frozen=True)
class Binding:
    """The binding limit: its kind, and the sentence the headline and the record state."""

    kind: BindingKind
    sentence: str


@dataclass
class Verdict:
    recommended: Candidate | None
    baseline: Candidate
    margin: float | None  # recommended rate / baseline rate
    within_intervals: bool
    why: str
    binding: Binding | None  # None when something is recommended, else what limited the run
    headline: list[str]
    tied: list[Candidate] = field(default_factory=list)  # the recommended and those it could not be told from
    unmeasured: list[str] = field(default_factory=list)  # kinds the time budget did not reach
    minutes_needed: float | None = None  # --minutes that would measure them

    @property
    def lower_bound(self) -> bool:
        return self.recommended is not None and self.recommended.lower_bound


def rate_text(c: Candidate) -> str:
    """'1,979' or 'at least 1,979': the figure, a floor when the ladder or the generator set it."""
    return f"{'at least ' if c.lower_bound else ''}{c.rate_at_slo:,.0f}"


def floor_reason(c: Candidate) -> str:
    if c.at_generator_limit:
        return " -- the load generator's limit here"
    if c.stop == Stop.TIME_BUDGET:
        return " (every step tried passed; the time budget allowed no higher ladder)"
    return " (every step tried passed)" if c.lower_bound else ""


def spans(*cands: Candidate) -> str:
    """'0-608 vs 47-53 req/s': the rounds' ranges of the rate at the objectives."""
    ranges = [c.interval or (c.rate_at_slo, c.rate_at_slo) for c in cands]
    return " vs ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in ranges) + " req/s"


def describe(c: Candidate) -> str:
    s = c.shape
    threads = "a thread per connection" if s.threads is None else f"{s.threads} thread{'s' * (s.threads > 1)}"
    return f"{s.family.server} {s.family.worker_class}, {s.workers} worker{'s' * (s.workers > 1)} x {threads}"


def lanes(rec: Candidate, thread_mb: float) -> str:
    """What holds one more request in the recommended shape, and what it costs (a thread was calibrated)."""
    kind = rec.shape.family.kind
    if kind == "greenlets":
        return f"greenlets hold them at less than a thread's {thread_mb:.1f} MB each"
    if kind == "native threads":
        return f"{rec.shape.family.server}'s threads hold them at about {thread_mb:.1f} MB each"
    return f"threads hold them at {thread_mb:.1f} MB each"


def holds_several(rec: Candidate) -> bool:
    """Whether one process of the shape holds more than one request at once."""
    return rec.shape.threads is None or rec.shape.threads > 1


def why(cal: Calibration, rec: Candidate, budget: Budget) -> str:
    """One sentence from the recommended shape and the same figures the table shows."""
    s = rec.shape
    cpu_ms, wall_ms, queued_ms = cal.in_app_cpu_s * 1000.0, cal.wall_s * 1000.0, cal.queue_s * 1000.0
    # the run-queue wait is neither I/O nor the app's CPU (io_share leaves it out): named when it shows
    queued = f" and {queued_ms:.2f} ms waiting for a core" if queued_ms >= 0.005 else ""
    spent = f"CPU {cpu_ms:.2f} ms{queued} of {wall_ms:.2f} ms mean"
    in_flight = rec.rate_at_slo * cal.wall_s
    per_process = in_flight / s.workers
    workers = f"{s.workers} worker process{'es' * (s.workers > 1)}"
    little = (
        f"at {rec.rate_at_slo:,.0f} req/s{' (or more)' if rec.lower_bound else ''} about {in_flight:.1f} "
        "requests are in the app at once "
        f"(rate x mean time in the app), {per_process:.1f} per process"
    )
    if cal.io_share >= IO_BOUND:
        cost = f"the app waits {cal.io_share:.0%} of each request ({spent})"
        if holds_several(rec):
            process = f"a worker process costs {cal.worker_mb:.0f} MB"
            return f"{cost}; {little}: {lanes(rec, cal.thread_mb)}, while {process}"
        each = f"{cal.worker_mb:.0f} MB each"
        return f"{cost}; {little}: one request per process, so {workers} at {each} hold them"
    share = f"{1 - cal.io_share:.0%}"
    cost = f"the app computes {share} of each request ({spent})"
    cores = f"{budget.cpus} allowed core{'s' * (budget.cpus > 1)}"
    if holds_several(rec):
        return (
            f"{cost}; {little}: Python runs on one core per process (the GIL), so {workers} use the "
            f"{cores} and {lanes(rec, cal.thread_mb)} while the rest of each request waits"
        )
    return (
        f"{cost}, so only processes add capacity -- one core of Python each, by the GIL -- "
        f"and {workers} {'use' if s.workers > 1 else 'uses'} the {cores}"
    )


def lowest_step_errors(cands: Sequence[Candidate]) -> str:
    """The error verdict of the lowest step tried, when error answers (not latency) failed it."""
    for c in cands:
        for r in c.rounds:
            if r.steps and r.steps[0].why.startswith("errors") and "unanswered" not in r.steps[0].why:
                return f"{c.key} at {r.steps[0].rate:g} req/s: {r.steps[0].why}"
    return ""


def time_budget(unmeasured: Sequence[str], minutes: float | None) -> str:
    """'greenlets, native threads not measured; --minutes 12 would measure one shape of each'."""
    if not unmeasured:
        return ""
    more = f"; --minutes {math.ceil(minutes)} would measure one shape of each" if minutes else ""
    return f"not measured within the time budget: {', '.join(unmeasured)}{more}"


def binding(
    cal: Calibration,
    slo: Slo,
    cands: Sequence[Candidate],
    memory_mb: float,
    only_baseline: bool,
    budget_note: str,
) -> Binding:
    if cal.app_errors:
        return Binding(BindingKind.APP_ERRORS, cal.app_errors)
    if app_misses(cal, slo.limits):
        own = ", ".join(f"p{q:g} {cal.app_ms.get(q, 0):.0f} ms" for q in sorted(slo.limits))
        return Binding(
            BindingKind.APP_LATENCY,
            f"the app's own latency: alone on the server it takes {own} ({slo.text()})",
        )
    over = [c for c in cands if c.status == Status.MEASURED and c.rate_at_slo > 0 and not c.fits(memory_mb)]
    if over:
        c = min(over, key=lambda c: c.memory_mb or 0)
        used = f"{c.key} met the objectives but used {c.memory_mb:.0f} MB > budget {memory_mb:.0f} MB"
        return Binding(BindingKind.MEMORY, f"memory: {used}")
    killed = [c for c in cands if any(r.oom for r in c.rounds)]
    if killed:
        keys = ", ".join(c.key for c in killed)
        return Binding(
            BindingKind.MEMORY, f"memory: the OOM killer killed {keys} at the {memory_mb:.0f} MiB limit"
        )
    if only_baseline:
        reached = budget_note or "nothing else reached"
        return Binding(BindingKind.TIME_BUDGET, f"the time budget: it measured only the baseline ({reached})")
    errors = lowest_step_errors(cands)
    if errors:
        return Binding(BindingKind.ERRORS_UNDER_LOAD, f"the app's errors under load: {errors}")
    return Binding(
        BindingKind.CPU, "CPU: no candidate met the objectives even at the lowest arrival rate tried"
    )


def margin_text(rec: Candidate, base: Candidate, margin: float | None, within: bool) -> str:
    name = f"the baseline gunicorn sync -w {base.shape.workers}"
    if rec is base:
        return "That is the baseline itself: no recommendable shape measured beat (2 x cpus) + 1 sync."
    if margin is None:
        return (
            f"The baseline (gunicorn sync, {base.shape.workers} workers) met the objectives at no rate tried."
        )
    words = margin_words(margin, rec.lower_bound, base.lower_bound)
    if words is None:
        return (
            f"{name} also reached {rate_text(base)} req/s{floor_reason(base)}: the margin is unknown "
            f"({stopped_text(base.stop)})."
        )
    return (
        f"{words[0].upper()}{words[1:]} {name} ({rate_text(base)} req/s)"
        + (f" -- but within each other's intervals ({spans(rec, base)})" if within else "")
        + "."
    )


def contrast_text(cands: Sequence[Candidate], rec: Candidate | None) -> str:
    """Our own model measured above the recommendation: shown as the contrast, not recommended."""
    ours = [c for c in cands if c.status == Status.MEASURED and not c.recommendable and c.rate_at_slo > 0]
    best = max(ours, key=lambda c: c.rate_at_slo, default=None)
    if best is None or (rec is not None and best.rate_at_slo <= rec.rate_at_slo):
        return ""
    return (
        f"Our own {best.key} reached {rate_text(best)} req/s: the teaching contrast, not recommended "
        f"(name {best.shape.family.name} in --servers to allow it)."
    )


def tie_text(close: Sequence[Candidate]) -> str:
    if len(close) < 2:
        return ""
    if all(c.at_generator_limit for c in close):
        how = "at the load generator's limit"
    else:
        how = f"within {TIE:.0%} or one ladder step of each other"
    names = ", ".join(f"{c.key} ({rate_text(c)} req/s, {c.memory_mb or 0:.0f} MB)" for c in close)
    return f"Tied {how}: {names}; the tie is broken by the smaller memory, so {close[0].key}."


@dataclass(frozen=True)
class Context:
    """What the verdict needs besides the candidates: the budget, the objectives, what was left out."""

    cal: Calibration
    budget: Budget
    slo: Slo
    app: str
    minutes: float = 0.0
    unmeasured: tuple[str, ...] = ()
    minutes_needed: float | None = None
    sharing: Sharing = field(default_factory=lambda: Sharing(shared=False, cpus=0, cores=0))


def generator_peak(cands: Sequence[Candidate]) -> tuple[float | None, float | None]:
    """The busiest locust process's highest share of a core over every step, and the rate offered then."""
    steps = [s for c in cands for r in c.rounds for s in r.steps if s.generator_busiest is not None]
    top = max(steps, key=lambda s: s.generator_busiest or 0.0, default=None)
    return (top.generator_busiest, top.rate) if top else (None, None)


def verdict(cands: Sequence[Candidate], base: Candidate, ctx: Context) -> Verdict:
    budget, slo, cal = ctx.budget, ctx.slo, ctx.cal
    close = tied(cands, budget.memory_mb)
    rec = close[0] if close else None
    budget_note = time_budget(ctx.unmeasured, ctx.minutes_needed)
    others = [c for c in cands if c is not base and c.rounds and c.recommendable]
    only_baseline = bool(base.rounds) and not others and not cal.app_errors
    used = f"it used {base.memory_mb or 0:.0f} MB"
    base_note = (
        ""
        if base.fits(budget.memory_mb)
        else f" (the baseline does not fit in {budget.memory_mb:.0f} MB: {used})"
    )
    if rec is None or only_baseline:
        limit = binding(cal, slo, cands, budget.memory_mb, only_baseline, budget_note)
        errors = f"errors <= {slo.max_error_rate:.2%}"
        within = f"{slo.text()} and {errors} within {budget.cpus} CPU and {budget.memory_mb:.0f} MB"
        first = (
            f"Nothing recommended: the {ctx.minutes:g}-minute time budget measured only the baseline."
            if only_baseline
            else f"No configuration met {within}."
        )
        headline = [first, f"The binding limit is {limit.sentence}.{base_note}"]
        if cal.app_errors:
            headline.append("Tune stopped after calibration: no server shape fixes the app's own errors.")
        elif only_baseline and base.rate_at_slo > 0:
            headline.append(
                f"The baseline gunicorn sync -w {base.shape.workers} met the objectives up to "
                f"{ctx.sharing.mark(f'{rate_text(base)} req/s')}{floor_reason(base)}; nothing else was "
                "measured, so nothing is recommended."
            )
        if contrast_text(cands, None):
            headline.append(contrast_text(cands, None))
        if ctx.sharing.shared:
            headline.append(ctx.sharing.after(*generator_peak(cands)))
        return Verdict(
            None, base, None, False, "", limit, headline, [], list(ctx.unmeasured), ctx.minutes_needed
        )
    margin = rec.rate_at_slo / base.rate_at_slo if base.rate_at_slo > 0 else None
    within = rec is not base and overlap(rec.interval, base.interval) and len(rec.rates()) > 1
    reason = why(cal, rec, budget)
    mem = f"{rec.memory_mb:.0f} MB" if rec.memory_mb is not None else "memory unknown"
    first = (
        f"Recommended: {rec.shape.deploy_command(ctx.app)} -- "
        f"{ctx.sharing.mark(f'{rate_text(rec)} req/s')}{floor_reason(rec)}, at {slo.text()}, {mem}."
    )
    headline = [first, margin_text(rec, base, margin, within) + base_note]
    if tie_text(close):
        headline.append(tie_text(close))
    headline.append(f"Why: {reason}.")
    if ctx.sharing.shared:
        headline.append(ctx.sharing.after(*generator_peak(cands)))
    if contrast_text(cands, rec):
        headline.append(contrast_text(cands, rec))
    if budget_note:
        headline.append(budget_note[0].upper() + budget_note[1:] + ".")
    return Verdict(
        rec, base, margin, within, reason, None, headline, close, list(ctx.unmeasured), ctx.minutes_needed
    )


def one_step(a: int | None, b: int | None, steps: Sequence[int]) -> bool:
    """Whether two counts are equal or neighbours on the grid (None = per connection: equal only to None)."""
    if a is None or b is None:
        return a == b
    grid = sorted({*steps, a, b})
    return abs(grid.index(a) - grid.index(b)) <= 1


def same_shape(a: Configuration, b: Configuration) -> bool:
    """Same target and worker class, workers and threads within one step of the search's grid."""
    return (
        a.target == b.target
        and a.worker_class == b.worker_class
        and one_step(a.workers, b.workers, WORKER_STEPS)
        and one_step(a.threads, b.threads, THREAD_STEPS)
    )


def against(previous: Configuration | None, now: Configuration | None) -> str:
    """One sentence: does this run's recommendation agree with an earlier one's (``rerun.sh`` passes
    ``--against``)?"""
    a, b = previous, now
    if a is None or b is None:
        return "same verdict as the earlier run" if a is b else "a different verdict from the earlier run"
    if same_shape(a, b):
        return f"same shape as the earlier run ({a.key} then, {b.key} now)"
    ia = a.rate_at_slo_interval or [a.rate_at_slo] * 2
    ib = b.rate_at_slo_interval or [b.rate_at_slo] * 2
    shapes = f"another shape than the earlier run ({a.key} then, {b.key} now)"
    if overlap(ia, ib):
        spans = f"{ia[0]:.0f}-{ia[1]:.0f} vs {ib[0]:.0f}-{ib[1]:.0f} req/s"
        return f"{shapes}, but the two are within each other's intervals ({spans})"
    return f"{shapes}, beyond the intervals"
