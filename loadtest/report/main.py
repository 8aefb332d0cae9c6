"""``python -m loadtest.report DIR``: (re)write a comparison's summary.json/.csv, report.md and report.html.

Reads what a run left in its directory (summary.json or slow.json, env.json, the identity
records), refreshes what today's rules decide (stability, evidence, the row's sentence), then
builds the page's outline once (``loadtest.reporting.comparison``) and renders it to Markdown
and to a self-contained HTML (``loadtest.reporting.document``).  Charts
(``loadtest.reporting.charts``) are written to ``charts/`` for the Markdown and embedded in the
HTML.  Directories written by older versions re-render: rows without rounds render as one round.
"""

from __future__ import annotations

import csv
from pathlib import Path

from loadtest.measure import evidence, stats
from loadtest.measure.rows import median_of, restat
from loadtest.registry import records as records_file
from loadtest.registry.error_kinds import ERROR_KINDS
from loadtest.registry.records import ComparisonRow, RunError, SlowRow, Summary
from loadtest.reporting import comparison, document
from loadtest.reporting.charts import (
    latency_chart,
    sweep_chart,
    sweeps,
    throughput_chart,
    timeline_chart,
    timeline_key,
)
from loadtest.reporting.figures import interpreter_text
from loadtest.run import slow
from server.oneline import OneLineParser

CSV_COLUMNS = [
    "scenario",
    "target",
    "kind",
    "url",
    "users",
    "rounds",
    "duration_s",
    "requests",
    "failures",
    *(f"errors_{k}" for k in ERROR_KINDS),
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "avg_ms",
    "latency_source",
    "pids",
    "threads",
    "max_threads_per_pid",
    "max_in_flight",
    "app_ms_p50",
    "lane_kind",
    "interpreter",
    "capacity",
    "io_ceiling",
    "io_efficiency",
    "server_cpu_cores",
    "server_mem_mb",
    "cpu_limit",
    "generator_cpu",
    "generator_processes",
    "generator_headroom",
    "generator_saturated",
    "machine_cpu",
    "machine_bound",
    *(f"{m}{stats.CI_SUFFIX}_{end}" for m in stats.METRICS for end in ("low", "high")),
    "unstable",
    "unstable_metrics",
    "unstable_reason",
    "error",
    "answer",
]


def csv_record(row: ComparisonRow) -> dict:
    """The row flattened for summary.csv: intervals as low/high columns, error kinds as columns."""
    fields = row.as_dict()
    out = {k: fields.get(k, "") for k in CSV_COLUMNS}
    for metric in stats.METRICS:
        ci = records_file.pair(row.extra.get(metric + stats.CI_SUFFIX)) or ("", "")
        out[f"{metric}{stats.CI_SUFFIX}_low"], out[f"{metric}{stats.CI_SUFFIX}_high"] = ci
    for kind in ERROR_KINDS:
        out[f"errors_{kind}"] = row.errors.get(kind, "")
    out["unstable_metrics"] = " ".join(row.unstable_metrics)
    out["rounds"] = row.round_count
    out["interpreter"] = interpreter_text(row)
    return out


def enrich(out: Path, rows: list[ComparisonRow], cpu_count: int | None) -> dict[int, list[dict]]:
    """Read each row's identity records; fill evidence the row lacks and refresh its sentence."""
    records_of = {}
    for i, r in enumerate(rows):
        if r.cpu_count is None:
            r.cpu_count = cpu_count
        restat(r)
        records = evidence.load(records_file.identity_path(out, r))
        records_of[i] = records
        if r.app_ms_p50 is None:  # a row written before rows carried it: from its rounds, the same way
            r.app_ms_p50 = median_of(r.per_round, "app_ms_p50")
        if records and not r.error:
            imbalance = evidence.pool_imbalance(records, r.users)
            r.pool_full_share = imbalance["share"] if imbalance else None
        r.answer = evidence.answer(r.target, r.scenario, r)
    return records_of


def write_all(
    out: Path, rows: list[ComparisonRow], env: dict, slow_rows: list[SlowRow] | None = None
) -> None:
    """Every document of a comparison; a slow-clients run (``slow_rows``) gets its own section instead.

    The rows get today's figures and sentences in place (``enrich``), so the caller prints the report's.
    """
    if slow_rows is not None:
        for r in slow_rows:
            r.answer = r.answer or slow.verdict(r)
        document.write(out, "report", comparison.slow_page(slow_rows, env))
        return
    records_of = enrich(out, rows, env.get("cpu_count"))
    records_file.write_summary(out, Summary(rows=rows, parameters=env.get("parameters")))
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(csv_record(r))
    document.write(out, "report", comparison.comparison_page(rows, env, draw_charts(out, rows, records_of)))


def draw_charts(
    out: Path, rows: list[ComparisonRow], records_of: dict[int, list[dict]]
) -> dict[str, document.Image]:
    """Every chart of the run, written to ``charts/``; key -> image (path for Markdown, bytes for HTML)."""
    drawn: dict[str, tuple[str, bytes]] = {}  # key -> (alt text, PNG)
    if any(r.value("rps") is not None for r in rows):
        drawn["throughput"] = ("requests per second", throughput_chart(rows))
        drawn["latency"] = ("latency percentiles", latency_chart(rows))
    for scenario in sweeps(rows):
        drawn[f"sweep-{scenario}"] = (f"sweep {scenario}", sweep_chart(scenario, rows))
    swept = set(sweeps(rows))
    for i, r in enumerate(rows):
        chart = timeline_chart(r, records_of[i])
        if chart is not None:
            drawn[timeline_key(r, swept)] = (f"timeline {r.scenario} {r.target}", chart)
    charts_dir = out / "charts"
    charts_dir.mkdir(exist_ok=True)
    images = {}
    for key, (alt, data) in drawn.items():
        (charts_dir / f"{key}.png").write_bytes(data)
        images[key] = document.Image(alt, f"charts/{key}.png", data)
    return images


def main(argv: list[str] | None = None) -> None:
    """``python -m loadtest.report DIR``: re-render the reports of a finished comparison."""

    parser = OneLineParser(prog="python -m loadtest.report", description=main.__doc__)
    parser.add_argument("dir", type=Path, help="a directory written by python -m loadtest.compare")
    args = parser.parse_args(argv)
    try:
        kind = records_file.kind_of(args.dir)
        if kind not in ("comparison", "slow"):
            raise RunError(f"{args.dir}: a {kind} run, not a comparison")
        env = records_file.read_json(args.dir / records_file.ENV)
        if kind == "slow":
            rows, slow_rows = [], records_file.load_slow(args.dir)
        else:
            rows, slow_rows = records_file.load_summary(args.dir).rows, None
    except RunError as exc:
        parser.exit(2, f"{parser.prog}: error: {args.dir} is not a comparison result: {exc}\n")
    write_all(args.dir, rows, env, slow_rows)
    print(f"wrote {args.dir}/report.html")
