"""The arrival-rate steps of one measurement, and each step's verdict.  Pure.

A measurement offers a shape a ladder of arrival rates, lowest first, each for
``STEP_S`` seconds (``loadtest/generator/arrivals.py`` sends them open-loop and
names each request after its step).  A step *meets the objectives* when every
latency percentile of the requests that arrived in it is within its limit and
the share of failed requests is within the error budget.  Requests the
generator never got an answer for count as failures: when a step recorded
fewer requests than its rate x seconds allows by chance (``MISSING_SIGMAS``
Poisson standard deviations), the missing ones are failures ("unanswered").

The figure of merit, ``rate_at_slo``, is the highest passing rate below the
first two failing steps in a row.  A failing step overloads the server and its
queue spills into the next; if that next, higher step still passes, the failure
was noise (a busy machine's stall), not capacity, and the ladder goes on.  When
the top step passes, the figure is a floor (``topped_out``).  A step is
*generator-bound* when the load generator, not the server, set its result: a
locust process saturated its core, or requests went missing while the answered
ones met every objective (the server answered quickly what it was sent); a
figure at such a step, or just below one, is a lower bound set by the generator.  The first step of
every ladder is a warm-up (``WARMUP``): sent, recorded, never judged -- a server
just started pays for lazy imports and new threads there.

Policy: ladders are geometric (equal ratios between steps).  What this module
does not know: servers, processes, locust.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from loadtest.measure import stats
from loadtest.registry.steps import STEP_MARKER, parse_step_name

STEP_S = 4.0
MISSING_SIGMAS = 4.0
FIRST_LOW, FIRST_HIGH, FIRST_STEPS = 0.3, 1.6, 7
FINE_LOW, FINE_HIGH, FINE_STEPS = 0.6, 1.25, 6
MIN_RATE = 0.5
WARMUP_STEPS = 1  # the ladder's first rate is offered this many extra steps first, not judged


def geometric(low: float, high: float, steps: int) -> list[float]:
    if steps == 1 or high <= low:
        return [max(low, MIN_RATE)]
    ratio = (high / low) ** (1.0 / (steps - 1))
    return [max(round(low * ratio**i, 1), MIN_RATE) for i in range(steps)]


def first_ladder(predicted: float) -> list[float]:
    """A wide ladder around the model's prediction: the model may be off by a factor."""
    return geometric(FIRST_LOW * predicted, FIRST_HIGH * predicted, FIRST_STEPS)


def fine_ladder(rate: float) -> list[float]:
    """A narrow ladder around a measured rate at the objectives: a confirming round."""
    return geometric(FINE_LOW * rate, FINE_HIGH * rate, FINE_STEPS)


def above(rate: float) -> list[float]:
    """The next ladder when every step passed: from the top step upwards."""
    return geometric(rate, 2.5 * rate, FIRST_STEPS)


@dataclass
class Step:
    rate: float  # offered arrivals per second
    seconds: float
    requests: int  # recorded (answered or failed)
    failures: int  # including unanswered
    p_ms: dict[float, float | None]  # percentile -> ms
    rps: float  # successful answers per second
    passed: bool
    why: str  # "" when passed, else the first objective missed
    missing: int = 0  # requests the step's rate should have sent that were never recorded
    generator_bound: bool = False  # the generator, not the server, set this step's result
    generator_busiest: float | None = None  # the busiest locust process's share of a core in the step
    app_ms: float | None = None  # mean time inside the app of the answered requests (identity headers)
    failed: dict[str, int] = field(default_factory=dict)  # failed answers by HTTP status, else error kind

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 1.0

    def as_dict(self) -> dict:
        return {
            "rate": self.rate,
            "requests": self.requests,
            "failures": self.failures,
            "error_rate": self.error_rate,
            **{f"p{q:g}_ms": v for q, v in self.p_ms.items()},
            "rps": self.rps,
            "passed": self.passed,
            "why": self.why,
            "generator_bound": self.generator_bound,
            "generator_busiest": self.generator_busiest,
            "app_ms": self.app_ms,
            "failed": self.failed,
        }


def step_of(record: dict) -> int | None:
    parsed = parse_step_name(str(record.get("name") or ""))
    return parsed[0] if parsed else None


def judged(by_step: dict[int, list[dict]], i: int) -> list[dict]:
    """The records of the ``i``-th judged step: the warm-up steps (``WARMUP_STEPS``) come first, unjudged."""
    return by_step.get(i + WARMUP_STEPS, [])


def is_marker(record: dict) -> bool:
    return str(record.get("name") or "").endswith(" " + STEP_MARKER)


def requests_only(records: Sequence[dict]) -> list[dict]:
    """The records of requests (the generator's step markers left out)."""
    return [r for r in records if not is_marker(r)]


def by_step(records: Sequence[dict]) -> dict[int, list[dict]]:
    """Requests per step: by the step their name starts with, else by the last step marker before them."""
    marks = sorted((float(r["t"]), step_of(r)) for r in records if is_marker(r) and r.get("t") is not None)
    times = [t for t, _ in marks]
    out: dict[int, list[dict]] = {}
    for r in requests_only(records):
        i = step_of(r)
        if i is None and marks and r.get("t") is not None:
            at = bisect.bisect_right(times, float(r["t"])) - 1
            i = marks[at][1] if at >= 0 else None
        if i is not None:
            out.setdefault(i, []).append(r)
    return out


def judge(
    rate: float, seconds: float, records: Sequence[dict], limits: dict[float, float], max_error_rate: float
) -> Step:
    if not records:
        return Step(
            rate, seconds, 0, 0, {q: None for q in limits}, 0.0, False, "not run: the ladder stopped below"
        )
    expected = rate * seconds
    missing = max(int(expected - MISSING_SIGMAS * math.sqrt(expected)) - len(records), 0)
    failures = sum(1 for r in records if not r.get("ok")) + missing
    total = len(records) + missing
    latencies = [float(r["ms"]) for r in records if r.get("ms") is not None]
    p_ms = {q: stats.percentile(latencies, q) for q in sorted({50.0, 95.0, 99.0, *limits})}
    ok = total - failures
    why = ""
    if failures / total > max_error_rate:
        why = f"errors {failures}/{total} ({100 * failures / total:.2g}%)" + (
            f", {missing} unanswered" if missing else ""
        )
    else:
        for q, limit in sorted(limits.items()):
            value = p_ms.get(q)
            if value is None or value > limit:
                why = f"p{q:g} {value:.0f} ms > {limit:g} ms" if value is not None else f"no p{q:g}"
                break
    step = Step(rate, seconds, total, failures, p_ms, ok / seconds, not why, why, missing)
    step.app_ms, step.failed = in_app_mean(records), failed_answers(records)
    return step


def in_app_mean(records: Sequence[dict]) -> float | None:
    """Mean ms the answered requests spent inside the app (X-Request-Start/End), None without them."""
    times = [(float(r["end"]) - float(r["start"])) * 1000.0 for r in records
             if r.get("ok") and r.get("start") and r.get("end")]  # fmt: skip
    return sum(times) / len(times) if times else None


def failed_answers(records: Sequence[dict]) -> dict[str, int]:
    """Failed requests by their HTTP status (``503``), else by the generator's error kind (``timeout``)."""
    out: dict[str, int] = {}
    for r in records:
        if not r.get("ok"):
            key = str(r.get("status") or r.get("error") or "no answer")
            out[key] = out.get(key, 0) + 1
    return out


def short_of_rate(step: Step, limits: dict[float, float]) -> bool:
    """Requests went missing while those answered met every objective: the generator did not send them."""
    return step.missing > 0 and all(
        step.p_ms.get(q) is not None and step.p_ms[q] <= ms for q, ms in limits.items()
    )


def judge_ladder(
    rates: Sequence[float],
    seconds: float,
    records: Sequence[dict],
    limits: dict[float, float],
    max_error_rate: float,
) -> list[Step]:
    """The verdict of each judged step (the warm-up steps before them are skipped)."""
    steps = by_step(records)
    return [judge(rate, seconds, judged(steps, i), limits, max_error_rate) for i, rate in enumerate(rates)]


def offered(rates: Sequence[float]) -> list[float]:
    """The rates the generator sends: the warm-up steps, then the judged ones."""
    return [rates[0]] * WARMUP_STEPS + list(rates)


def rate_at_slo(steps: Sequence[Step]) -> tuple[float, Step | None, bool]:
    """(the figure, its step, whether the top step passed): see the module's policy."""
    best: Step | None = None
    for i, step in enumerate(steps):
        if step.passed:
            best = step
        elif i + 1 >= len(steps) or not steps[i + 1].passed:
            return (best.rate if best else 0.0), best, False
    return (best.rate if best else 0.0), best, best is not None


def at_generator_limit(steps: Sequence[Step], best: Step | None) -> bool:
    """Whether the figure's step, or the first failing step above it, was generator-bound."""
    if best is None:
        return False
    i = steps.index(best)
    return best.generator_bound or (i + 1 < len(steps) and steps[i + 1].generator_bound)
