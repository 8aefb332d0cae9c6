"""Two bench runs side by side: per target, CPU per request and requests/s from A to B, and the verdict.

The judgement is the one rule every diff uses (``loadtest.measure.change``: minimum rounds,
disjoint intervals, minimum change; a bench row's verdict follows CPU per request). This module
pairs the rows by target and writes the table: ``python -m loadtest.diff`` and its alias
``python -m loadtest.bench --diff`` both call :func:`run`. Text only; no charts.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.measure import change
from loadtest.measure.change import MIN_CHANGE, MIN_ROUNDS
from loadtest.registry import records
from loadtest.registry.records import BenchRun
from loadtest.registry.targets import lookup

VERDICT_METRIC = change.VERDICT_METRIC["bench"]
COLUMNS = (("cpu_us", "CPU us/req A -> B", 24), ("rps", "req/s A -> B", 26))
MEANING = (
    f"bench diff, the rule of every diff: with {MIN_ROUNDS} or more rounds a side, significant (*) = the "
    f"min-max intervals of the rounds do not overlap and the medians differ by at least {MIN_CHANGE:.0%}; "
    f"the verdict follows CPU us/req"
)


def pairs(run_a: BenchRun, run_b: BenchRun) -> list[dict]:
    """Per target measured in both runs: each metric's change and the target's verdict."""
    rows_a = {r.key: r for r in run_a.rows}
    out = []
    for b in run_b.rows:
        a = rows_a.get(b.key)
        if a is None:
            continue
        changes = {m: change.change(m, a, b) for m in records.BENCH_METRICS}
        verdict_change = changes[VERDICT_METRIC]
        out.append(
            {
                "target": b.target,
                "rounds_a": a.round_count,
                "rounds_b": b.round_count,
                "changes": changes,
                "judged": change.judged(a, b) and not (a.failed or b.failed),
                "significant": verdict_change.significant,
                "chance_disjoint": change.chance(a, b),
                "verdict": change.verdict(a, b, verdict_change),
            }
        )
    return out


def cell(c: change.Change) -> str:
    if c.change is None or c.a is None or c.b is None:
        return "-"
    return f"{c.a:,.0f} -> {c.b:,.0f} ({c.change_pct or 0:+.0%}){' *' if c.significant else ''}"


def reference_moves(rows: list[dict]) -> list[str]:
    """The targets that are not ours whose figures changed significantly: the runs' machines differed."""
    return [r["target"] for r in rows if r["significant"] and not ours(r["target"])]


def ours(name: str) -> bool:
    target = lookup(name)
    return target is not None and target.kind == "lab"


def text(names: tuple[str, str], run_a: BenchRun, run_b: BenchRun) -> str:
    rows = pairs(run_a, run_b)
    counted = [r for r in rows if r["judged"]]
    chances = {r["chance_disjoint"] for r in counted if r["chance_disjoint"] is not None}
    first = change.headline(len(counted), sum(r["significant"] for r in counted), chances, "CPU us/req")
    width = max((len(r["target"]) for r in rows), default=6)
    lines = [
        f"A = {names[0]}, B = {names[1]}: {first}.",
        MEANING,
        "",
        f"| {'target':<{width}} | " + " | ".join(f"{title:>{w}}" for _, title, w in COLUMNS) + " | verdict",
        f"|{'-' * (width + 2)}|" + "|".join("-" * (w + 2) for _, _, w in COLUMNS) + "|--------",
    ]
    for r in rows:
        cells = " | ".join(f"{cell(r['changes'][m]):>{w}}" for m, _, w in COLUMNS)
        lines.append(f"| {r['target']:<{width}} | {cells} | {r['verdict']}")
    if moved := reference_moves(rows):
        lines += [
            "",
            f"caution: servers that are not ours changed too ({', '.join(moved)}): the machine's load"
            f" differed between the runs (load {run_a.load_before:.2f}-{run_a.load_after:.2f} vs"
            f" {run_b.load_before:.2f}-{run_b.load_after:.2f}), so part of every change may be the"
            " machine's; compare builds in one sitting, or trust CPU/req over req/s",
        ]
    return "\n".join(lines)


def run(run_a: Path, run_b: Path) -> int:
    """Two bench runs: the table printed and written to RUN_B/bench-diff-vs-<name of RUN_A>.md."""
    table = text(
        (run_a.resolve().name, run_b.resolve().name), records.load_bench(run_a), records.load_bench(run_b)
    )
    out = run_b / f"bench-diff-vs-{run_a.resolve().name}.md"
    out.write_text(table + "\n", encoding="utf-8")
    print(table)
    print(f"wrote {out}")
    return 0
