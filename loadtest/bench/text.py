"""``make bench``'s table: what the terminal shows of a run (bench.json holds the figures)."""

from __future__ import annotations

import os

from loadtest.bench.goals import REFERENCE, figure_of
from loadtest.registry.records import BenchRow, BenchRun
from loadtest.registry.targets import BENCH_VARIANTS, TARGETS

NAME_WIDTH = max(map(len, (*TARGETS, *BENCH_VARIANTS)))  # the tables' target column: any name fits


def _interval(row: BenchRow, metric: str, scale: str) -> str:
    ci = row.interval(metric)
    if not ci or ci[0] == ci[1]:
        return ""
    return f" ({ci[0]:{scale}}-{ci[1]:{scale}})"


def report(run: BenchRun) -> str:
    rows = {r.target: r for r in run.rows}
    reference = figure_of(rows, REFERENCE, "rps")
    p = run.parameters
    lines = [
        f"wrk -t{p.threads} -c{p.connections} -d{p.duration:g}s, GET / (Hello Flask), "
        f"median of {p.rounds} interleaved round(s) (min-max); {os.cpu_count()} CPUs, "
        f"load average {run.load_before:.2f} before, {run.load_after:.2f} after; "
        f"req/s ratios against app.run() ({REFERENCE}), CPU ratios against the best native server",
        "",
        f"| {'target':<{NAME_WIDTH}} | {'req/s':>22} | {'vs app.run':>10} | {'CPU us/req':>20} "
        f"| {'vs native':>9} | notes",
        f"|{'-' * (NAME_WIDTH + 2)}|{'-' * 24}|{'-' * 12}|{'-' * 22}|{'-' * 11}|------",
    ]
    ratios = run.native_cpu_ratio
    for row in run.rows:
        rps, cpu = row.value("rps"), row.value("cpu_us")
        rate = f"{rps:,.0f}{_interval(row, 'rps', ',.0f')}" if rps else "-"
        ratio = f"{rps / reference:.2f}x" if rps and reference else "-"
        cpu_text = f"{cpu:,.0f}{_interval(row, 'cpu_us', ',.0f')}" if cpu else "-"
        native = f"{ratios[row.target]:.2f}x" if row.target in ratios else "-"
        note = f"{row.explanation}. {row.failed}".strip()
        lines.append(
            f"| {row.target:<{NAME_WIDTH}} | {rate:>22} | {ratio:>10} | {cpu_text:>20} | {native:>9} | {note}"
        )
    lines.append("")
    for goal in run.goals:
        ratio = f"{goal['ratio']:.2f}x" if goal["ratio"] is not None else "-"
        lines.append(f"goal {goal['goal']}: {ratio} ({goal['verdict']})")
    return "\n".join(lines)
