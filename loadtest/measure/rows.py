"""The result row: one per scenario x target x user count, built from its rounds.

A row is a ``registry.records.ComparisonRow`` from ``new`` on: what summary.json, summary.csv
and the reports show, one type from here to the renderer.  Its headline
figures are medians over the rounds under the historic keys (``rps``,
``p95_ms``, ...), each with ``<metric>_ci95`` (``stats.summarize``), next to
``per_round``, the N round records they came from.

Fields set here (the judgements themselves are ``loadtest.measure.verdicts``'s):

- ``generator_saturated``, ``machine_bound``: ``verdicts.generator_saturated`` and
  ``verdicts.machine_bound`` over the good rounds.
- ``cpu_ms_mean``, ``app_ms_mean``, ``wall_per_cpu``, ``request_cores`` (medians
  over rounds, in the summary): the CPU each request used, its time inside the
  app, their ratio (the "GIL wait" of CPU-bound threads) and the cores the
  requests kept busy; ``evidence.turns_of`` words them.
- ``app_ms_p50``: the median over rounds of each round's median time inside the
  app (server-side start/end); ``evidence.answer`` reads it to tell sub-millisecond
  requests that cannot overlap from requests that queued, and the reports show
  the same field, so the sentence compare prints and the report's agree.
- ``unstable_reason``: for a row ``stats.summarize`` calls unstable, the likeliest
  cause -- generator saturated, machine-bound, or a busy machine
  (``verdicts.machine_busy``) -- else "spread between rounds, cause not observed".
"""

from __future__ import annotations

import statistics
from dataclasses import fields

from loadtest.measure import evidence, stats, verdicts
from loadtest.measure.round_record import BUCKETS, EXACT
from loadtest.registry.error_kinds import ERROR_KINDS
from loadtest.registry.records import ComparisonRow

# A measured io rate this far above the model's own ceiling is a bias (io_efficiency withheld).
ABOVE_CEILING = 1.05
ROW_FIELDS = frozenset(f.name for f in fields(ComparisonRow)) - {"extra"}
FACT_KEYS = ("with_identity", "pids", "threads", "max_threads_per_pid", "models_seen")


def new(
    scenario: str,
    target: str,
    users: int,
    *,
    kind: str,
    url: str,
    command: str,
    explanation: str,
    capacity: int | None,
    cpu_count: int,
    duration_s: int,
) -> ComparisonRow:
    """A row before its rounds: no error of any kind counted yet, exact latency, no verdict against it.

    These are a fresh row's values where ``ComparisonRow``'s defaults say "not recorded" (what a
    row read from an older file lacks). ``duration_s`` is kept in ``extra``, written where it
    always was.
    """
    return ComparisonRow(
        scenario=scenario,
        target=target,
        users=users,
        kind=kind,
        url=url,
        command=command,
        explanation=explanation,
        capacity=capacity,
        cpu_count=cpu_count,
        errors=dict.fromkeys(ERROR_KINDS, 0),
        latency_source=EXACT,
        generator_saturated=False,
        machine_bound=False,
        extra={"duration_s": duration_s},
    )


def restat(row: ComparisonRow) -> ComparisonRow:
    """The stability verdict again from the row's rounds, so a re-render or a diff applies today's rule."""
    good = [r for r in row.per_round if not r.get("error")]
    if len(good) >= 2:
        verdict = stats.summarize(good, stats.STABILITY_METRICS)
        row.unstable, row.unstable_metrics = verdict["unstable"], verdict["unstable_metrics"]
        if not row.unstable:
            row.unstable_reason = ""
    return row


def median_of(per_round: list[dict], key: str) -> float | None:
    values = stats.numbers(per_round, key)
    return statistics.median(values) if values else None


def merged_facts(per_round: list[dict]) -> dict:
    """Identity facts over all rounds: the largest count any round saw, every model seen."""
    out: dict = {k: max((r.get(k) or 0 for r in per_round), default=0) for k in FACT_KEYS[:-1]}
    out["models_seen"] = sorted({m for r in per_round for m in r.get("models_seen") or []})
    return out


def round_error(rows: list[dict]) -> str:
    failed = [r["error"] for r in rows if r.get("error")]
    if not failed:
        return ""
    if len(failed) == len(rows) and len(set(failed)) == 1:
        return failed[0]
    return f"{len(failed)} of {len(rows)} rounds failed: {failed[0]}"


def unstable_reason(row: ComparisonRow, summary: dict) -> str:
    if not summary.get("unstable"):
        return ""
    if row.generator_saturated:
        return "generator saturated"
    if row.machine_bound:
        return "machine-bound: server and generator used nearly every core"
    if verdicts.machine_busy(row.per_round, row.cpu_count):
        before = max(stats.numbers(row.per_round, "load_before"), default=0.0)
        after = max(stats.numbers(row.per_round, "load_after"), default=0.0)
        return f"machine busy: load average {before:.1f} before/{after:.1f} after"
    return "spread between rounds, cause not observed"


def finish(row: ComparisonRow, sleep_s: float) -> ComparisonRow:
    """Medians, intervals and judgements from ``row.per_round``; the answer sentence last."""
    good = [r for r in row.per_round if not r.get("error")]
    row.rounds = len(row.per_round)
    row.error = row.error or round_error(row.per_round)
    if good:
        summary = stats.summarize(good, stats.METRICS)
        facts = merged_facts(good)
        figures(row, summary, facts)
        row.app_ms_p50 = median_of(good, "app_ms_p50")
        row.lane_kind = next((r["lane_kind"] for r in good if r.get("lane_kind")), "")
        row.interpreter = next((r["interpreter"] for r in good if r.get("interpreter")), {})
        row.requests = sum(r.get("requests") or 0 for r in good)
        row.failures = sum(r.get("failures") or 0 for r in good)
        row.errors = {k: sum((r.get("errors") or {}).get(k, 0) for r in good) for k in ERROR_KINDS}
        judge(row, good)
        pick = sorted(good, key=lambda r: r.get("rps") or 0.0)[len(good) // 2]
        row.identity_file = pick.get("identity_file", "")
        if row.scenario == "io":
            row.io_ceiling = evidence.io_ceiling(row.users, sleep_s, row.capacity)
            rps = summary.get("rps")
            row.io_efficiency = rps / row.io_ceiling if row.io_ceiling and rps is not None else None
            if row.io_efficiency is not None and row.io_efficiency > ABOVE_CEILING:
                row.notes.append(
                    f"{rps:.1f} req/s is above the {row.io_ceiling:.1f} req/s this model allows: a bias of"
                    " the measurement, not a result, so no efficiency is stated"
                )
                row.io_efficiency = None
        row.unstable_reason = unstable_reason(row, summary)
        if row.requests and not facts.get("with_identity"):
            row.notes.append("no identity headers in the responses: pids/threads/in-flight unknown")
        seen = facts.get("models_seen") or []
        if seen and seen != [row.target]:
            row.notes.append(f"X-Server-Model said {', '.join(seen)}")
    row.answer = evidence.answer(row.target, row.scenario, row)
    return row


def figures(row: ComparisonRow, summary: dict, facts: dict) -> None:
    """The identity facts and the medians over rounds into the row: named fields where the row has
    them, the rest in ``extra`` (facts before medians, as summary.json has always listed them)."""
    for source in (facts, summary):
        for key, value in source.items():
            if key in ROW_FIELDS:
                setattr(row, key, value)
            else:
                row.extra[key] = value


def judge(row: ComparisonRow, good: list[dict]) -> None:
    """Generator and machine verdicts, Little's law, the latency source."""
    busiest = verdicts.busiest_generator(good)
    row.generator_saturated = verdicts.generator_saturated(good)
    row.generator_headroom = 1.0 - max(busiest) if busiest else None
    row.generator_processes = max((r.get("generator_processes") or 1 for r in good), default=None)
    row.machine_cpu = median_of(good, "machine_cpu")
    row.machine_bound = verdicts.machine_bound(good, row.cpu_count)
    row.little = {
        "in_flight_measured": median_of(good, "in_flight_measured"),
        "in_flight_little": median_of(good, "in_flight_little"),
    }
    if any(r.get("latency_source") == BUCKETS for r in good):
        row.latency_source = BUCKETS
