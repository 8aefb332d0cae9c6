"""Compare two comparison runs row by row: what changed, and whether it is beyond the noise.

``python -m loadtest.diff RUN_A RUN_B [--out DIR]`` reads both runs'
``summary.json``, pairs rows by (scenario, target, users) and writes
``diff.json``, ``diff.md`` and a self-contained ``diff.html`` (default
directory: ``RUN_B/diff-vs-<name of RUN_A>``).

A metric's change is *significant* when both runs have at least
``MIN_ROUNDS`` rounds, their intervals do not overlap (``stats.significant``:
each median then lies outside the other run's interval) and the change is at
least ``MIN_CHANGE`` of A's median.  Fewer rounds leave too much to chance:
two min..max intervals of 2 rounds each miss each other a third of the time
with no change at all (``stats.chance_disjoint``); 3 rounds bring it to 10%.
Runs written before rounds existed count as one round.  The minimum change
keeps a 0.2% drift in a near-constant figure (memory) from being called a
change.  A row is significant when its requests/s is: in a closed-loop test
throughput and latency move together, and flagging a row on any of six
metrics would flag unchanged rows by chance far too often.  Rows present in
only one run are listed, never dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtest import report
from loadtest.measure import stats, verdicts
from loadtest.reporting import charts, document, figures
from server.oneline import OneLineParser

VERDICT_METRIC = "rps"
MIN_ROUNDS = 3
MIN_CHANGE = 0.05
LOWER_IS_BETTER = {"p50_ms", "p95_ms", "p99_ms", "server_cpu_cores", "server_mem_mb"}
LABELS = {
    "rps": "req/s",
    "p50_ms": "p50 ms",
    "p95_ms": "p95 ms",
    "p99_ms": "p99 ms",
    "server_cpu_cores": "server CPU",
    "server_mem_mb": "server MB",
}


class RunError(Exception):
    """A directory that is not a comparison result; the message is one line for the user."""


def load_run(path: Path) -> tuple[list[dict], dict]:
    """Rows and environment of a run directory; env is {} when env.json is missing."""
    if not path.is_dir():
        raise RunError(f"{path}: no such directory")
    summary = path / "summary.json"
    if not summary.is_file():
        raise RunError(f"{path}: no summary.json (not a directory written by loadtest.compare)")
    try:
        rows = json.loads(summary.read_text(encoding="utf-8"))["rows"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{summary}: unreadable ({exc})") from exc
    try:
        env = json.loads((path / "env.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        env = {}
    return rows, env


def key(row: dict) -> tuple[str, str, int]:
    return row["scenario"], row["target"], int(row.get("users") or 0)


def figure(row: dict, metric: str) -> tuple[float | None, list[float] | None]:
    """(median, interval) of a metric; no figure for a failed row, no interval for a single round."""
    value = figures.number(row.get(metric))
    if row.get("error") or value is None:
        return None, None
    return value, figures.interval(row, metric)


def judged(a: dict, b: dict) -> bool:
    """Enough rounds on both sides for a verdict."""
    return min(figures.rounds_of(a), figures.rounds_of(b)) >= MIN_ROUNDS


def change(metric: str, a: dict, b: dict) -> dict:
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
    return {
        "a": a_val,
        "b": b_val,
        "a_ci95": a_ci,
        "b_ci95": b_ci,
        "change": delta,
        "change_pct": pct,
        "significant": sig,
        "direction": direction,
    }


def busy(row: dict) -> str:
    """'load 8.8 on 2 cores' when the machine had more runnable work than cores during the row, else ''."""
    per_round, cores = row.get("per_round") or [], figures.number(row.get("cpu_count"))
    if not verdicts.machine_busy(per_round, cores):
        return ""
    return f"load {verdicts.peak_load(per_round):.1f} on {cores:g} cores"


def compare_rows(a: dict, b: dict) -> dict:
    metrics = {m: change(m, a, b) for m in stats.HEADLINE}
    scenario, target, users = key(a)
    return {
        "scenario": scenario,
        "target": target,
        "users": users,
        "rounds_a": figures.rounds_of(a),
        "rounds_b": figures.rounds_of(b),
        "error_a": a.get("error") or "",
        "error_b": b.get("error") or "",
        "unstable_a": bool(a.get("unstable")),
        "unstable_b": bool(b.get("unstable")),
        "busy_a": busy(a),
        "busy_b": busy(b),
        "metrics": metrics,
        "significant_metrics": [m for m, c in metrics.items() if c["significant"]],
        "chance_disjoint": stats.chance_disjoint(figures.rounds_of(a), figures.rounds_of(b)),
        "significant": metrics[VERDICT_METRIC]["significant"],
    }


def diff(rows_a: list[dict], rows_b: list[dict]) -> dict:
    """The diff.json document: paired rows in B's order, and the rows only one run has."""
    rows_a, rows_b = [report.restat(r) for r in rows_a], [report.restat(r) for r in rows_b]
    by_key_a = {key(r): r for r in rows_a}
    keys_b = {key(r) for r in rows_b}
    paired = [compare_rows(by_key_a[key(b)], b) for b in rows_b if key(b) in by_key_a]

    def brief(r: dict) -> dict:
        return {"scenario": r["scenario"], "target": r["target"], "users": int(r.get("users") or 0)}

    return {
        "rows": paired,
        "only_in_a": [brief(r) for r in rows_a if key(r) not in keys_b],
        "only_in_b": [brief(r) for r in rows_b if key(r) not in by_key_a],
    }


# --------------------------------------------------------------------------- rendering


def cell(c: dict, metric: str) -> str:
    """'1,234 -> 1,301 (+5.4%)', marked when significant."""
    spec = ".2f" if metric == "server_cpu_cores" else ".1f" if metric != "server_mem_mb" else ".0f"
    if c["a"] is None and c["b"] is None:
        return "-"
    text = f"{figures.fmt(c['a'], spec)} -> {figures.fmt(c['b'], spec)}"
    if c["change_pct"] is not None:
        text += f" ({c['change_pct']:+.1%})"
    if c["significant"]:
        text += f" {c['direction'].upper()}"
    return text


def row_status(r: dict) -> str:
    shaky = [side for side in ("A", "B") if r.get(f"unstable_{side.lower()}")]
    text = verdict_of(r) + (f"; unstable in {' and '.join(shaky)}" if shaky else "")
    crowded = [
        f"{side} ({r[f'busy_{side.lower()}']})" for side in ("A", "B") if r.get(f"busy_{side.lower()}")
    ]
    if r["significant"] and crowded:
        text += f"; machine busy in {' and '.join(crowded)}: the change may be the machine's"
    return text


def verdict_of(r: dict) -> str:
    if r["error_a"] or r["error_b"]:
        return "failed in " + " and ".join(s for s, e in (("A", r["error_a"]), ("B", r["error_b"])) if e)
    if min(r["rounds_a"], r["rounds_b"]) < MIN_ROUNDS:
        return f"{r['rounds_a']} and {r['rounds_b']} rounds: too few to tell (need {MIN_ROUNDS} a side)"
    if r["significant"]:
        return f"significant ({r['metrics'][VERDICT_METRIC]['direction']})"
    return "no clear change (intervals overlap)"


def table(doc: dict) -> tuple[list[str], list[list[str]]]:
    header = ["scenario", "target", "users", *(LABELS[m] for m in stats.HEADLINE), "verdict (req/s)"]
    body = [
        [
            r["scenario"],
            r["target"],
            str(r["users"]),
            *(cell(r["metrics"][m], m) for m in stats.HEADLINE),
            row_status(r),
        ]
        for r in doc["rows"]
    ]
    return header, body


def headline(doc: dict) -> str:
    counted = [
        r
        for r in doc["rows"]
        if min(r["rounds_a"], r["rounds_b"]) >= MIN_ROUNDS and not (r["error_a"] or r["error_b"])
    ]
    sig = sum(r["significant"] for r in counted)
    crowded = sum(bool(r["significant"] and (r["busy_a"] or r["busy_b"])) for r in counted)
    chances = {r["chance_disjoint"] for r in counted if r["chance_disjoint"] is not None}
    chance = f" (by chance alone about {max(chances):.0%} of unchanged rows would be)" if chances else ""
    if not counted:
        return (
            f"No row has {MIN_ROUNDS}+ rounds on both sides: nothing is called significant; "
            f"{len(doc['rows'])} rows in both runs, {len(doc['only_in_a'])} only in A, "
            f"{len(doc['only_in_b'])} only in B."
        )
    return (
        f"{sig} of {len(counted)} rows with {MIN_ROUNDS}+ rounds on both sides changed significantly in "
        f"req/s{chance}"
        + (f", {crowded} of them measured on a busy machine" if crowded else "")
        + f"; {len(doc['rows'])} rows in both runs, "
        f"{len(doc['only_in_a'])} only in A, {len(doc['only_in_b'])} only in B."
    )


def describe(name: str, path: Path, env: dict) -> str:
    params = env.get("parameters") or {}
    bits = [f"{name} = {path}"]
    for label, value in (
        ("started", env.get("started")),
        ("git", env.get("git_commit")),
        ("rounds", params.get("rounds")),
        ("seed", env.get("seed", params.get("seed"))),
        ("CPU", env.get("cpu_model")),
    ):
        if value not in (None, ""):
            bits.append(f"{label} {value}")
    return ", ".join(str(b) for b in bits)


def only_lines(doc: dict) -> list[str]:
    out = []
    for side, label in (("only_in_a", "A"), ("only_in_b", "B")):
        for r in doc[side]:
            out.append(f"only in {label}: {r['scenario']} / {r['target']} / {r['users']} users")
    return out


MEANING = (
    f"A -> B (change). UPPER-CASE verdict: with {MIN_ROUNDS} or more rounds a side, the two runs' "
    f"intervals of that metric do not overlap and the change is at least {MIN_CHANGE:.0%}. Intervals are "
    "min..max of the rounds for up to 5 rounds (75% coverage at 3 rounds), a bootstrap 95% interval "
    "above. The row's verdict follows req/s."
)


def row_class(r: dict) -> str:
    return "failed" if r["error_a"] or r["error_b"] else "floor" if r["significant"] else ""


def page(doc: dict, intro: list[str], charts: dict[str, document.Image]) -> document.Page:
    """The outline of diff.md/diff.html, on the same skeleton as the comparison's report."""
    blocks: list = [
        document.items(intro, "meta"),
        document.Para(headline(doc), "strong"),
        document.Para(MEANING, "meta"),
        document.Table(*table(doc), [row_class(r) for r in doc["rows"]]),
    ]
    only = only_lines(doc)
    if only:
        blocks += [document.Heading("Rows in one run only"), document.items(only)]
    if charts:
        blocks += [
            document.Heading("A and B side by side"),
            document.Para("Bars: medians; whiskers: intervals.", "meta"),
        ]
    for scenario, image in charts.items():
        blocks += [document.Heading(scenario, 3), image]
    return document.Page("wsgi-lab diff", blocks=blocks)


def side_by_side_chart(scenario: str, rows: list[dict], names: tuple[str, str]) -> bytes:
    """req/s and p95 of A and B per target, bars with interval whiskers."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    several_users = len({r["users"] for r in rows}) > 1
    ticks = [f"{r['target']} @{r['users']}" if several_users else r["target"] for r in rows]
    width = 0.38
    for ax, metric in zip(axes, ("rps", "p95_ms"), strict=True):
        for k, side in enumerate(("a", "b")):
            xs = [i + (k - 0.5) * width for i in range(len(rows))]
            values = [r["metrics"][metric][side] for r in rows]
            cis = [r["metrics"][metric][side + "_ci95"] for r in rows]
            ax.bar(
                xs,
                [v or 0 for v in values],
                width,
                yerr=charts.yerr(values, cis),
                capsize=3,
                label=f"A: {names[0]}" if side == "a" else f"B: {names[1]}",
                color=charts.COLORS[k],
            )
        for i, r in enumerate(rows):
            if r["metrics"][metric]["significant"]:
                top = max(r["metrics"][metric]["a"] or 0, r["metrics"][metric]["b"] or 0)
                ax.annotate("*", (i, top), ha="center", va="bottom", fontsize=14)
        ax.set_xticks(range(len(rows)), ticks, rotation=30, ha="right")
        ax.set_title(f"{scenario}: {LABELS[metric]} (* = significant)")
        ax.legend(frameon=False)
    fig.tight_layout()
    return charts.png(fig)


def write(out: Path, doc: dict, intro: list[str], names: tuple[str, str] = ("A", "B")) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "diff.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    charts = {}
    for scenario in dict.fromkeys(r["scenario"] for r in doc["rows"]):
        sub = [r for r in doc["rows"] if r["scenario"] == scenario]
        data = side_by_side_chart(scenario, sub, names)
        (out / f"diff-{scenario}.png").write_bytes(data)
        charts[scenario] = document.Image(f"{scenario}: A and B", f"diff-{scenario}.png", data)
    document.write(out, "diff", page(doc, intro, charts))


def main(argv: list[str] | None = None) -> int:
    """``python -m loadtest.diff RUN_A RUN_B``: what changed from run A to run B, beyond the noise."""
    parser = OneLineParser(prog="python -m loadtest.diff", description=main.__doc__)
    parser.add_argument("run_a", type=Path, help="the earlier run directory (baseline)")
    parser.add_argument("run_b", type=Path, help="the later run directory")
    parser.add_argument(
        "--out", type=Path, help="where to write the diff (default RUN_B/diff-vs-<name of RUN_A>)"
    )
    args = parser.parse_args(argv)
    try:
        rows_a, env_a = load_run(args.run_a)
        rows_b, env_b = load_run(args.run_b)
    except RunError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    out = args.out or args.run_b / f"diff-vs-{args.run_a.resolve().name}"
    doc = diff(rows_a, rows_b)
    intro = [describe("A", args.run_a, env_a), describe("B", args.run_b, env_b)]
    write(out, doc, intro, (args.run_a.resolve().name, args.run_b.resolve().name))
    print(headline(doc))
    print(f"wrote {out}/diff.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
