"""Compare two runs row by row: what changed, and whether it is beyond the noise.

``python -m loadtest.diff RUN_A RUN_B [--out DIR]`` reads two comparison runs (summary.json),
pairs rows by (scenario, target, users) and writes ``diff.json``, ``diff.md`` and a
self-contained ``diff.html`` (default directory: ``RUN_B/diff-vs-<name of RUN_A>``). Two bench
runs (bench.json) are paired by target (``loadtest.reporting.bench_diff``) and written to
``RUN_B/bench-diff-vs-<name of RUN_A>.md``.

Both are judged by one rule, ``loadtest.measure.change`` (minimum rounds, disjoint intervals,
minimum change, the metric a row's verdict follows); this module pairs rows and renders.
Rows present in only one run are listed, never dropped. Runs written before rounds existed
count as one round (``loadtest.registry.records``).
"""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.measure import change, evidence, stats, verdicts
from loadtest.measure.change import MIN_CHANGE, MIN_ROUNDS
from loadtest.measure.rows import restat
from loadtest.registry import records
from loadtest.registry.records import ComparisonRow, Environment, RunError
from loadtest.reporting import bench_diff, charts, diff_chart, document, figures
from server.oneline import OneLineParser

VERDICT_METRIC = change.VERDICT_METRIC["comparison"]
LABELS = {
    "rps": "req/s",
    "p50_ms": "p50 ms",
    "p95_ms": "p95 ms",
    "p99_ms": "p99 ms",
    "server_cpu_cores": "server CPU",
    "server_mem_mb": "server MB",
}


def load_run(path: Path) -> tuple[list[ComparisonRow], Environment]:
    """Rows and environment of a comparison run; an empty Environment when env.json is missing."""
    if records.kind_of(path) != "comparison":
        raise RunError(f"{path}: no summary.json (not a directory written by loadtest.compare)")
    return records.load_summary(path).rows, records.load_env(path)


def busy(row: ComparisonRow) -> str:
    """'load 8.8 on 2 cores' when the machine had more runnable work than cores during the row, else ''."""
    cores = row.cpu_count
    if not verdicts.machine_busy(row.per_round, cores):
        return ""
    return f"load {verdicts.peak_load(row.per_round):.1f} on {cores:g} cores"


def compare_rows(a: ComparisonRow, b: ComparisonRow) -> dict:
    metrics = {m: change.change(m, a, b) for m in stats.HEADLINE}
    scenario, target, users = b.key
    return {
        "scenario": scenario,
        "target": target,
        "users": users,
        "rounds_a": a.round_count,
        "rounds_b": b.round_count,
        "error_a": a.error,
        "error_b": b.error,
        "unstable_a": a.unstable,
        "unstable_b": b.unstable,
        "busy_a": busy(a),
        "busy_b": busy(b),
        "metrics": {m: c.as_dict() for m, c in metrics.items()},
        "significant_metrics": [m for m, c in metrics.items() if c.significant],
        "chance_disjoint": change.chance(a, b),
        "significant": metrics[VERDICT_METRIC].significant,
        "verdict": change.verdict(a, b, metrics[VERDICT_METRIC]),
    }


def brief(r: ComparisonRow) -> dict:
    scenario, target, users = r.key
    return {"scenario": scenario, "target": target, "users": users}


def diff(rows_a: list[ComparisonRow], rows_b: list[ComparisonRow]) -> dict:
    """The diff.json document: paired rows in B's order, and the rows only one run has."""
    rows_a, rows_b = [restat(r) for r in rows_a], [restat(r) for r in rows_b]
    by_key_a = {r.key: r for r in rows_a}
    keys_b = {r.key for r in rows_b}
    return {
        "rows": [compare_rows(by_key_a[b.key], b) for b in rows_b if b.key in by_key_a],
        "only_in_a": [brief(r) for r in rows_a if r.key not in keys_b],
        "only_in_b": [brief(r) for r in rows_b if r.key not in by_key_a],
    }


def timelines(
    runs: tuple[Path, Path], rows_a: list[ComparisonRow], rows_b: list[ComparisonRow]
) -> dict[str, bytes]:
    """The report's timeline of every paired row, A's above B's, from each run's identity records."""
    by_key_a = {r.key: r for r in rows_a}
    images: dict[str, bytes] = {}
    for b in rows_b:
        a = by_key_a.get(b.key)
        for side, run, row in (("A", runs[0], a), ("B", runs[1], b)):
            if row is None or row.error:
                continue
            chart = charts.timeline_chart(row, evidence.load(records.identity_path(run, row)))
            if chart:
                images[f"{side}: {row.scenario} / {row.target} / {row.users} users"] = chart
    return images


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
    text = r["verdict"] + (f"; unstable in {' and '.join(shaky)}" if shaky else "")
    crowded = [
        f"{side} ({r[f'busy_{side.lower()}']})" for side in ("A", "B") if r.get(f"busy_{side.lower()}")
    ]
    if r["significant"] and crowded:
        text += f"; machine busy in {' and '.join(crowded)}: the change may be the machine's"
    return text


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


def judged_rows(doc: dict) -> list[dict]:
    return [
        r
        for r in doc["rows"]
        if min(r["rounds_a"], r["rounds_b"]) >= MIN_ROUNDS and not (r["error_a"] or r["error_b"])
    ]


def counts(doc: dict) -> str:
    return (
        f"{len(doc['rows'])} rows in both runs, {len(doc['only_in_a'])} only in A, "
        f"{len(doc['only_in_b'])} only in B."
    )


def headline(doc: dict) -> str:
    counted = judged_rows(doc)
    sig = sum(r["significant"] for r in counted)
    crowded = sum(bool(r["significant"] and (r["busy_a"] or r["busy_b"])) for r in counted)
    chances = {r["chance_disjoint"] for r in counted if r["chance_disjoint"] is not None}
    first = change.headline(len(counted), sig, chances, LABELS[VERDICT_METRIC])
    busy_note = f", {crowded} of them measured on a busy machine" if crowded else ""
    return f"{first}{busy_note}; {counts(doc)}"


def describe(name: str, path: Path, env: Environment) -> str:
    bits = [f"{name} = {path}"]
    for label, value in (
        ("started", env.started),
        ("git", env.git_commit),
        ("rounds", env.parameters.get("rounds")),
        ("seed", env.seed if env.seed is not None else env.parameters.get("seed")),
        ("CPU", env.cpu_model),
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


def page(
    doc: dict, intro: list[str], charts: dict[str, document.Image], lanes: list[document.Image] | None = None
) -> document.Page:
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
    if lanes:
        blocks += [document.Heading("Timelines"), document.Para(TIMELINES, "meta")]
    for image in lanes or []:
        blocks += [document.Heading(image.alt, 3), image]
    return document.Page("wsgi-lab diff", blocks=blocks)


TIMELINES = (
    "Who served when in each run (the last round of the row): one lane per (process, thread or greenlet), "
    "pale for a request's time inside the app, its CPU time as a dark core."
)


def write(
    out: Path,
    doc: dict,
    intro: list[str],
    names: tuple[str, str] = ("A", "B"),
    lanes: dict[str, bytes] | None = None,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "diff.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    charts = {}
    for scenario in dict.fromkeys(r["scenario"] for r in doc["rows"]):
        sub = [r for r in doc["rows"] if r["scenario"] == scenario]
        data = diff_chart.side_by_side(scenario, sub, names, LABELS)
        (out / f"diff-{scenario}.png").write_bytes(data)
        charts[scenario] = document.Image(f"{scenario}: A and B", f"diff-{scenario}.png", data)
    timeline_images = []
    for i, (title, data) in enumerate((lanes or {}).items(), 1):
        (out / f"diff-timeline-{i}.png").write_bytes(data)
        timeline_images.append(document.Image(title, f"diff-timeline-{i}.png", data))
    document.write(out, "diff", page(doc, intro, charts, timeline_images))


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
        kinds = {records.kind_of(args.run_a), records.kind_of(args.run_b)}
        if kinds == {"bench"}:
            return bench_diff.run(args.run_a, args.run_b)
        if "bench" in kinds:
            raise RunError(
                f"{args.run_a} and {args.run_b}: one bench run and one comparison cannot be paired"
            )
        rows_a, env_a = load_run(args.run_a)
        rows_b, env_b = load_run(args.run_b)
    except RunError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    out = args.out or args.run_b / f"diff-vs-{args.run_a.resolve().name}"
    doc = diff(rows_a, rows_b)
    intro = [describe("A", args.run_a, env_a), describe("B", args.run_b, env_b)]
    lanes = timelines((args.run_a, args.run_b), rows_a, rows_b)
    write(out, doc, intro, (args.run_a.resolve().name, args.run_b.resolve().name), lanes)
    print(headline(doc))
    print(f"wrote {out}/diff.html")
    return 0
