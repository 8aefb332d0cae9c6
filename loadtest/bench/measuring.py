"""``make bench``'s measuring: one round of one target (a fresh server, wrk, its tree's CPU), and a
target's row over its rounds (medians and intervals, ``records.BenchRow``)."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

from loadtest.measure import stats
from loadtest.registry.paths import PROJECT_ROOT
from loadtest.registry.records import BENCH_METRICS, BenchRound, BenchRow
from loadtest.registry.targets import Target
from loadtest.run.local import LocalRunner
from loadtest.run.runner import START_TIMEOUT_S, Launch


def run_wrk(port: int, args: argparse.Namespace, duration: int) -> tuple[float, str, int]:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        f"http://127.0.0.1:{port}/",
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    problems = [line.strip() for line in out.splitlines() if "Socket errors" in line or "Non-2xx" in line]
    total = re.search(r"(\d+) requests in", out)
    return float(match[1]), "; ".join(problems), int(total[1]) if total else 0


def measure_round(target: Target, args: argparse.Namespace, logs: Path) -> BenchRound:
    """One round of one target: a fresh server, wrk's warm-up and measured runs, its tree's CPU."""
    # The app is served as given, without the bring-your-own wrapper: its headers would cost CPU here.
    launch = Launch(
        name=target.name, target=target, log_dir=logs, app=args.app, wrap_byo=False, cwd=PROJECT_ROOT
    )
    with LocalRunner(launch) as server:
        if not (server.start() and server.wait_ready(START_TIMEOUT_S)):
            return BenchRound(None, errors=f"FAILED: {server.problem}; {server.stderr_tail(3)}")
        try:
            if args.warmup > 0:
                run_wrk(server.port, args, args.warmup)
            before = server.usage()
            rate, problems, requests = run_wrk(server.port, args, args.duration)
            after = server.usage()
        except (RuntimeError, subprocess.SubprocessError) as exc:
            return BenchRound(None, errors=f"FAILED: {exc}; {server.stderr_tail(3)}")
        if before is None or after is None:
            return BenchRound(
                None, errors=f"FAILED: the server {server.exit_text()}; {server.stderr_tail(3)}"
            )
    cpu = after.cpu_s - before.cpu_s
    return BenchRound(rate, cpu / requests * 1e6 if requests else None, requests, problems)


def bench_row(target: Target, rounds: list[BenchRound]) -> BenchRow:
    """A target over all rounds: its rounds, then their medians with intervals, as bench.json's row."""
    measured = [r.as_dict() for r in rounds if r.rps is not None]
    out = stats.summarize(measured, BENCH_METRICS) if measured else {}
    failed = [r.errors for r in rounds if r.rps is None]
    return BenchRow(
        target=target.name,
        explanation=target.explanation,
        command_args=list(target.args),
        per_round=list(rounds),
        failed=failed[0] if failed else "",
        rps=out.get("rps"),
        cpu_us=out.get("cpu_us"),
        rps_ci95=out.get("rps" + stats.CI_SUFFIX),
        cpu_us_ci95=out.get("cpu_us" + stats.CI_SUFFIX),
    )
