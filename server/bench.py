"""``make bench``: hello-world requests/s of our three modes against Flask's and gunicorn's servers.

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
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "flask-dev"  # app.run(): what people actually use, so every ratio is against it


@dataclass(frozen=True)
class Target:
    name: str
    argv: tuple[str, ...]  # "{port}" is replaced by the port
    description: str


TARGETS = (
    Target("lab-single", ("-m", "server", "--mode", "single", "-b", "127.0.0.1:{port}", "app:app"),
           "our server, one connection at a time"),
    Target("lab-threaded", ("-m", "server", "--mode", "threaded", "-b", "127.0.0.1:{port}", "app:app"),
           "our server, a thread per connection"),
    Target("lab-forking", ("-m", "server", "--mode", "forking", "-b", "127.0.0.1:{port}", "app:app"),
           "our server, a process per connection"),
    Target("flask-dev", ("-m", "app", "--port", "{port}"), "app.run(): werkzeug, threaded=True"),
    Target("flask-dev-nothreads", ("-m", "app", "--port", "{port}", "--no-threads"),
           "werkzeug, threaded=False"),
    Target("gunicorn-sync-w2",
           ("-m", "gunicorn", "-w", "2", "-k", "sync", "-b", "127.0.0.1:{port}", "app:app"),
           "gunicorn -w 2 (sync workers)"),
)  # fmt: skip

# (numerator, denominator, minimum ratio) from the issue.
GOALS = (
    ("lab-threaded", "flask-dev", 2.0),
    ("lab-single", "flask-dev-nothreads", 1.2),
    ("lab-forking", "gunicorn-sync-w2", 1.0),
)


@dataclass
class Result:
    target: Target
    requests_per_s: float | None
    errors: str = ""
    cpu_per_request: float | None = None  # seconds of server CPU (all its processes) per request


def cpu_seconds(pid: int) -> float:
    """CPU used so far by a server: itself, its live children and the children it has reaped.

    Less sensitive than req/s to other load on a shared machine, so it is
    printed next to it.
    """
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
        if p.pid == pid:
            total += times.children_user + times.children_system
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before answering /health")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no answer on /health within {timeout:g}s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM by pid, SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def measure(target: Target, args: argparse.Namespace) -> Result:
    port = free_port()
    argv = [sys.executable, *(a.format(port=port) for a in target.argv)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LAB_SERVER_MODEL", None)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_health(port, proc)
        if args.warmup > 0:
            run_wrk(port, args, args.warmup)
        cpu_before = cpu_seconds(proc.pid)
        rate, problems, requests = run_wrk(port, args, args.duration)
        cpu = cpu_seconds(proc.pid) - cpu_before
        return Result(target, rate, problems, cpu / requests if requests else None)
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
        return Result(target, None, f"FAILED: {exc}")
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
        row = f"| {r.target.name:<20} | {rate:>9} | {ratio:>10} | {cpu:>10} | {r.target.description}."
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
    parser = argparse.ArgumentParser(prog="python -m server.bench", description=__doc__)
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
    names = [t.name for t in TARGETS]
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
    chosen = [t for t in TARGETS if not args.only or t.name in args.only]
    rounds: dict[str, list[Result]] = {t.name: [] for t in chosen}
    for round_no in range(1, args.rounds + 1):  # interleaved, so a burst of other load hits every target
        for target in chosen:
            print(f"round {round_no}/{args.rounds}: measuring {target.name} ...", file=sys.stderr, flush=True)
            rounds[target.name].append(measure(target, args))
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
