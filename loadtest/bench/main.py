"""``make bench``: hello-world throughput and CPU per request of the registry's servers, measured by wrk.

Every target runs the same app (``app:app``, ``GET /``) on a free 127.0.0.1
port, one target at a time, and is measured by the same client -- ``wrk``,
written in C so it is not the bottleneck.  Policy, stated once:

- **Rounds are interleaved** (every target once, then every target again), so
  a burst of other load hits every target rather than one; each figure is the
  median over the rounds with its interval (:mod:`loadtest.measure.stats`:
  min..max for up to 5 rounds).
- **CPU per request** is the CPU time of the server's whole process tree
  (workers and reaped children included) over the measured seconds, divided by
  the requests wrk completed.  On a shared machine it moves far less than
  requests/s, which depends on how much CPU the server was given; the goals on
  CPU use it, and every lab mode is also shown as a ratio to the best native
  server (granian, uWSGI) of the same run.
- **A run directory** ``results/bench-<UTC time>/`` holds ``bench.json``
  (every round of every target, the medians, the goals), ``env.json`` and
  ``rerun.sh`` (``loadtest.registry.records`` types them).  ``python -m loadtest.diff A B``
  (alias: ``python -m loadtest.bench --diff A B``) says which targets changed beyond the
  noise by the rule every diff uses (``loadtest.measure.change``).
- **Proving the diff**: ``--app app.slowed:app`` serves the same app with
  ``LAB_SLOW_US`` (default 100) microseconds of extra CPU work per request;
  the server is untouched.  A diff of a normal run against that one (3 rounds
  a side) must call the slowed targets "significant (worse)" in CPU per request.

Figures are measured here and printed, never asserted in a test: the machine
they run on decides them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.measure import stats
from loadtest.registry import records
from loadtest.registry.records import BENCH_METRICS, BenchParameters, BenchRound, BenchRow, BenchRun, RunError
from loadtest.registry.targets import BENCH_VARIANTS, OUR_APP, TARGETS, Target, lookup
from loadtest.reporting import bench_diff
from loadtest.run.environment import load_average, machine_record
from loadtest.run.local import LocalRunner
from loadtest.run.runner import Launch
from server.oneline import OneLineParser

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
REFERENCE = "flask-dev"  # app.run(): what people actually use, so every req/s ratio is against it
NATIVE = ("granian", "uwsgi")  # servers whose protocol work is not Python: the near-limit anchors
OURS = (
    "lab-single",
    "lab-single-h11",
    "lab-threaded",
    "lab-threaded-pinned",
    "lab-forking",
    "lab-prefork-w2",
    "lab-event",
)
NAME_WIDTH = max(map(len, (*TARGETS, *BENCH_VARIANTS)))  # the tables' target column: any name fits
METRICS = BENCH_METRICS  # requests/s, CPU us per request

# make bench's targets: registry entries, and registry variants for the fair pairs (2 worker
# processes each).  lab-event runs as the registry has it, against waitress's 4 threads.
BENCH_TARGETS = (
    "lab-single",
    "lab-single-h11",  # not in a goal: lab-single with the pure-Python parser (what parsing in Python costs)
    "lab-threaded",
    "lab-threaded-pinned",  # not in a goal: what one core for the GIL changes (docs/server.md)
    "lab-forking",
    "lab-prefork-w2",
    "lab-event",
    "flask-dev",
    "gunicorn-sync-w2",
    "waitress",
    *NATIVE,
)


@dataclass(frozen=True)
class Goal:
    """``target``'s ``metric`` against ``other``'s; ``other`` "native" = the best of :data:`NATIVE`."""

    target: str
    other: str
    metric: str
    ratio: float  # rps: at least this ratio; cpu_us: at most this ratio

    def text(self) -> str:
        word = "CPU/req <=" if self.metric == "cpu_us" else "req/s >="
        other = "best of " + "/".join(NATIVE) if self.other == "native" else self.other
        return f"{self.target} {word} {self.ratio:g}x {other}"


GOALS = (  # the server's goals table (docs/bench.md); the callgrind goal is make callgrind's
    Goal("lab-single", "native", "cpu_us", 1.25),
    Goal("lab-threaded", "flask-dev", "rps", 3.0),
    Goal("lab-forking", "gunicorn-sync-w2", "rps", 1.2),
    Goal("lab-prefork-w2", "gunicorn-sync-w2", "rps", 1.6),
    Goal("lab-event", "waitress", "rps", 1.6),
)


Round = BenchRound  # one measurement of one target, as bench.json records it


@dataclass
class Row:
    """A target over all rounds: its rounds, then their medians with intervals as bench.json's row."""

    target: Target
    rounds: list[Round] = field(default_factory=list)

    def summary(self) -> BenchRow:
        measured = [r.as_dict() for r in self.rounds if r.rps is not None]
        out = stats.summarize(measured, METRICS) if measured else {}
        failed = [r.errors for r in self.rounds if r.rps is None]
        return BenchRow(
            target=self.target.name,
            explanation=self.target.explanation,
            command_args=list(self.target.args),
            per_round=list(self.rounds),
            failed=failed[0] if failed else "",
            rps=out.get("rps"),
            cpu_us=out.get("cpu_us"),
            rps_ci95=out.get("rps" + stats.CI_SUFFIX),
            cpu_us_ci95=out.get("cpu_us" + stats.CI_SUFFIX),
        )


# --- measuring -----------------------------------------------------------------------------------


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


START_TIMEOUT_S = 30.0


def measure(target: Target, args: argparse.Namespace, logs: Path) -> Round:
    """One round of one target: a fresh server, wrk's warm-up and measured runs, its tree's CPU."""
    # The app is served as given, without the bring-your-own wrapper: its headers would cost CPU here.
    launch = Launch(name=target.name, target=target, log_dir=logs, app=args.app, wrap_byo=False, cwd=ROOT)
    with LocalRunner(launch) as server:
        if not (server.start() and server.wait_ready(START_TIMEOUT_S)):
            return Round(None, errors=f"FAILED: {server.problem}; {server.stderr_tail(3)}")
        try:
            if args.warmup > 0:
                run_wrk(server.port, args, args.warmup)
            before = server.usage()
            rate, problems, requests = run_wrk(server.port, args, args.duration)
            after = server.usage()
        except (RuntimeError, subprocess.SubprocessError) as exc:
            return Round(None, errors=f"FAILED: {exc}; {server.stderr_tail(3)}")
        if before is None or after is None:
            return Round(None, errors=f"FAILED: the server {server.exit_text()}; {server.stderr_tail(3)}")
    cpu = after.cpu_s - before.cpu_s
    return Round(rate, cpu / requests * 1e6 if requests else None, requests, problems)


# --- judging one run: goals and ratios -----------------------------------------------------------


def best_native(rows: dict[str, BenchRow]) -> tuple[str, float] | None:
    """(name, CPU us/req) of the native server with the lowest CPU per request in this run."""
    measured = [(rows[n].cpu_us, n) for n in NATIVE if n in rows and rows[n].cpu_us]
    if not measured:
        return None
    cpu, name = min(measured)
    return name, cpu


def figure_of(rows: dict[str, BenchRow], target: str, metric: str) -> float | None:
    row = rows.get(target)
    return row.value(metric) if row else None


def check_goals(rows: dict[str, BenchRow]) -> list[dict]:
    """Each goal with the measured ratio of medians and its verdict (met / MISSED / not measured)."""
    native = best_native(rows)
    out = []
    for goal in GOALS:
        mine = figure_of(rows, goal.target, goal.metric)
        if goal.other == "native":
            other = native[1] if native else None
        else:
            other = figure_of(rows, goal.other, goal.metric)
        ratio = mine / other if mine and other else None
        if ratio is None:
            verdict = "not measured"
        elif goal.metric == "cpu_us":
            verdict = "met" if ratio <= goal.ratio else "MISSED"
        else:
            verdict = "met" if ratio >= goal.ratio else "MISSED"
        out.append({"goal": goal.text(), "ratio": ratio, "verdict": verdict})
    return out


def native_ratios(rows: dict[str, BenchRow]) -> dict[str, float]:
    """Each of our modes' CPU per request divided by the best native server's, same run."""
    native = best_native(rows)
    if native is None:
        return {}
    return {n: rows[n].cpu_us / native[1] for n in OURS if n in rows and rows[n].cpu_us}


# --- the run directory ---------------------------------------------------------------------------


def environment(started: str, finished: str, loads: tuple, argv: list[str]) -> dict:
    return {"kind": "bench", **machine_record(started, finished, loads, argv)}


def write_rerun(out: Path, argv: list[str]) -> None:
    """An executable rerun.sh: the same bench, into a new directory (or $1)."""
    args: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg == "--out":
            skip = not skip
            continue
        if not arg.startswith("--out="):
            args.append(arg)
    command = shlex.join([sys.executable, "-m", "loadtest.bench", *args])
    script = (
        "#!/bin/sh\n"
        "# Repeat this bench: same arguments, new output directory (or the one given).\n"
        "set -e\n"
        f"cd {shlex.quote(str(ROOT))}\n"
        f'exec {command} --out "${{1:-{out}-rerun-$(date -u +%Y%m%dT%H%M%SZ)}}"\n'
    )
    path = out / "rerun.sh"
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)


def write_run(out: Path, run: BenchRun, env: dict, argv: list[str]) -> None:
    records.write_bench(out, run)
    records.write_env(out, env)
    write_rerun(out, argv)


# --- text ----------------------------------------------------------------------------------------


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


# --- main ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtest.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds per target (default 10)")
    parser.add_argument("-c", "--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds per target; medians of them (default 3)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="unmeasured seconds first, 0 for none (default 1)"
    )
    names = list(BENCH_TARGETS)
    parser.add_argument("--only", nargs="+", choices=names, metavar="TARGET", help=f"subset of {names}")
    parser.add_argument(
        "--target-args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="extra options for one target, e.g. 'lab-event=--threads 4' (repeatable)",
    )
    parser.add_argument(
        "--app",
        default=OUR_APP,
        help=f"WSGI app every target serves (default {OUR_APP}; app.slowed:app adds LAB_SLOW_US of CPU)",
    )
    parser.add_argument("--out", type=Path, help="run directory (default results/bench-<UTC time>)")
    parser.add_argument(
        "--diff",
        nargs=2,
        type=Path,
        metavar=("RUN_A", "RUN_B"),
        help="compare two bench runs only (the same as python -m loadtest.diff RUN_A RUN_B)",
    )
    return parser


def chosen_targets(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Target]:
    extra: dict[str, str] = {}
    for item in args.target_args:
        name, sep, text = item.partition("=")
        if not sep or name not in BENCH_TARGETS:
            parser.error(
                f"--target-args wants NAME=ARGS with NAME one of {list(BENCH_TARGETS)}, got {item!r}"
            )
        extra[name] = f"{extra.get(name, '')} {text}".strip()
    targets = []
    for name in BENCH_TARGETS:
        if args.only and name not in args.only:
            continue
        target = lookup(name)
        assert target is not None, name
        targets.append(target.with_args(extra[name]) if name in extra else target)
    return targets


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.diff:  # an alias of python -m loadtest.diff on two bench runs: the same rule and table
        try:
            return bench_diff.run(*args.diff)
        except RunError as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if (
        args.duration <= 0
        or args.rounds < 1
        or args.connections < 1
        or not 1 <= args.threads <= args.connections
    ):
        parser.error("need duration > 0, rounds >= 1 and 1 <= threads <= connections")
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu)", file=sys.stderr
        )
        return 2
    chosen = chosen_targets(parser, args)
    started = datetime.datetime.now(datetime.UTC)
    out = args.out or RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}"
    logs = Path(tempfile.mkdtemp(prefix="wsgi-lab-bench-"))
    load_before = load_average()
    rows = {t.name: Row(t) for t in chosen}
    for round_no in range(1, args.rounds + 1):  # interleaved, so a burst of other load hits every target
        for target in chosen:
            print(f"round {round_no}/{args.rounds}: measuring {target.name} ...", file=sys.stderr, flush=True)
            rows[target.name].rounds.append(measure(target, args, logs))
    summaries = [rows[t.name].summary() for t in chosen]
    by_name = {s.target: s for s in summaries}
    loads = (load_before, load_average())
    run = BenchRun(
        parameters=BenchParameters(
            duration=args.duration,
            connections=args.connections,
            threads=args.threads,
            rounds=args.rounds,
            warmup=args.warmup,
            app=args.app,
        ),
        rows=summaries,
        load_before=loads[0] or 0.0,
        load_after=loads[1] or 0.0,
        goals=check_goals(by_name),
        native_cpu_ratio=native_ratios(by_name),
    )
    finished = datetime.datetime.now(datetime.UTC)
    write_run(out, run, environment(started.isoformat(), finished.isoformat(), loads, argv), argv)
    print(report(run))
    print(f"\nwrote {out / records.BENCH}; compare two runs with: python -m loadtest.diff RUN_A RUN_B")
    return 1 if any(s.failed and s.rps is None for s in summaries) else 0
