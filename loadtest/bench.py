"""``make bench``: hello-world requests/s of the registry's servers, measured by wrk.

Every target runs the same app (``app:app``, ``GET /``) on a free 127.0.0.1
port, one target at a time, and is measured by the same client -- ``wrk``,
written in C so it is not the bottleneck.  The figures are measured here and
printed, never asserted: the machine they run on decides them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadtest.inserver.usage import cpu_seconds
from loadtest.run.processes import free_port, start, stop, tail, wait_healthy
from loadtest.targets import OUR_APP, Target, lookup
from server.oneline import OneLineParser

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "flask-dev"  # app.run(): what people actually use, so every ratio is against it


# make bench's targets: registry entries, and registry variants for the fair pairs
# (2 worker processes each; an event loop with 4 threads against waitress's 4 threads).
BENCH_TARGETS = (
    "lab-single",
    "lab-threaded",
    "lab-forking",
    "flask-dev",
    "flask-dev-nothreads",
    "gunicorn-sync-w2",
    "lab-prefork-w2",
    "lab-event-t4",
    "waitress",
)

# Our server's goals against the established servers: (ours, the reference, the least ratio of
# ours' req/s to the reference's that meets the goal).
GOALS = (
    ("lab-threaded", "flask-dev", 2.0),
    ("lab-single", "flask-dev-nothreads", 1.2),
    ("lab-forking", "gunicorn-sync-w2", 1.0),
    ("lab-prefork-w2", "gunicorn-sync-w2", 1.0),
    ("lab-event-t4", "waitress", 1.0),
)


@dataclass
class Result:
    target: Target
    requests_per_s: float | None
    errors: str = ""
    cpu_per_request: float | None = None  # seconds of server CPU (all its processes) per request


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


def measure(target: Target, args: argparse.Namespace, logs: Path) -> Result:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAB_SERVER_MODEL": target.name}
    try:
        proc = start(target.command(OUR_APP, port), logs, target.name, env, ROOT)
    except OSError as exc:
        return Result(target, None, f"FAILED: {exc}")
    try:
        wait_healthy(port, proc, timeout=30.0)
        if args.warmup > 0:
            run_wrk(port, args, args.warmup)
        root = psutil.Process(proc.pid)
        cpu_before = cpu_seconds(root)
        rate, problems, requests = run_wrk(port, args, args.duration)
        cpu = cpu_seconds(root) - cpu_before
        return Result(target, rate, problems, cpu / requests if requests else None)
    except (RuntimeError, TimeoutError, subprocess.SubprocessError, psutil.Error) as exc:
        return Result(target, None, f"FAILED: {exc}; {tail(logs / f'{target.name}.stderr.log', 3)}")
    finally:
        stop(proc)


def report(results: list[Result], args: argparse.Namespace) -> str:
    rates = {r.target.name: r.requests_per_s for r in results}
    reference = rates.get(REFERENCE)
    lines = [
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, GET / (Hello Flask), "
        f"median of {args.rounds} round(s), "
        f"{os.cpu_count()} CPUs; ratios against app.run() ({REFERENCE})",
        "",
        f"| {'target':<20} | {'req/s':>9} | {'vs app.run':>10} | {'CPU us/req':>10} | notes",
        f"|{'-' * 22}|{'-' * 11}|{'-' * 12}|{'-' * 12}|------",
    ]
    for r in results:
        rate = f"{r.requests_per_s:,.0f}" if r.requests_per_s else "-"
        ratio = f"{r.requests_per_s / reference:.2f}x" if r.requests_per_s and reference else "-"
        cpu = f"{r.cpu_per_request * 1e6:,.0f}" if r.cpu_per_request else "-"
        row = f"| {r.target.name:<20} | {rate:>9} | {ratio:>10} | {cpu:>10} | {r.target.explanation}."
        lines.append(f"{row} {r.errors}".rstrip())
    lines.append("")
    for name, other, goal in GOALS:
        a, b = rates.get(name), rates.get(other)
        if a and b:
            verdict = "met" if a / b >= goal else "MISSED"
            lines.append(f"goal {name} >= {goal:g}x {other}: {a / b:.2f}x ({verdict})")
        elif name in rates or other in rates:
            lines.append(f"goal {name} >= {goal:g}x {other}: not measured")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m loadtest.bench", description=__doc__)
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds per target (default 10)")
    parser.add_argument("-c", "--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every target this many times, report the median (default 1)",
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="unmeasured seconds first, 0 for none (default 1)"
    )
    names = list(BENCH_TARGETS)
    parser.add_argument("--only", nargs="+", choices=names, metavar="TARGET", help=f"subset of {names}")
    args = parser.parse_args(argv)
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
    chosen = [lookup(n) for n in BENCH_TARGETS if not args.only or n in args.only]
    logs = Path(tempfile.mkdtemp(prefix="wsgi-lab-bench-"))
    rounds: dict[str, list[Result]] = {t.name: [] for t in chosen}
    for round_no in range(1, args.rounds + 1):  # interleaved, so a burst of other load hits every target
        for target in chosen:
            print(f"round {round_no}/{args.rounds}: measuring {target.name} ...", file=sys.stderr, flush=True)
            rounds[target.name].append(measure(target, args, logs))
    results = [median(rounds[t.name]) for t in chosen]
    print(report(results, args))
    return 1 if any(r.requests_per_s is None for r in results) else 0


def median(results: list[Result]) -> Result:
    """The round with the median req/s (a failed round makes the target failed)."""
    failed = [r for r in results if r.requests_per_s is None]
    if failed:
        return failed[0]
    ordered = sorted(results, key=lambda r: r.requests_per_s or 0.0)
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    sys.exit(main())
