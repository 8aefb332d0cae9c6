"""``make generator-ceiling``: requests per core of one locust process of ours, against a trivial server.

The server is granian (HTTP parsed in Rust) with ``loadtest/bench/trivial.py``, one
worker pinned to one core; the locust process is pinned to another core, so the two
never share a core (other processes on the machine are not kept off either).  Each
round runs every generator kind once, interleaved:

- ``open``: ``arrivals.py``'s ``ArrivalUser`` (``make tune``'s open-loop load) at ``--rate``;
- ``closed``: ``locustfile.py``'s ``HelloUser`` (the compare scenarios), ``--users`` users;
- ``bare``: ``bare.py``'s ``BareUser``, locust's FastHttpUser with nothing of ours.

The figures are taken over a window of ``--seconds`` after ``WARM_S`` of warm-up: requests
counted by the server (``GET /_count``, not the generator's own stats), the locust
process's CPU (psutil, user + system), and the server's.  **Requests per core** is
requests / locust CPU seconds: on a shared machine a process may not get its whole core,
and this ratio moves far less than the rate does.  A row whose server used more than
``SERVER_BOUND`` of its core is marked: there the server, not the generator, may be the limit.
``--baseline DIR`` runs the same kinds from another checkout (``git worktree add DIR
<commit>``) in the same rounds, for before/after figures.  Medians over ``--rounds``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from loadtest.bench.trivial import COUNT_PATH
from loadtest.registry.paths import PROJECT_ROOT
from loadtest.run.environment import load_average
from loadtest.run.processes import free_port
from loadtest.run.runner import START_TIMEOUT_S
from server.oneline import OneLineParser

KINDS = ("open", "closed", "bare")
WARM_S = 3.0
SERVER_BOUND = 0.9  # the server's share of its core above which a row may measure the server


@dataclass
class Sample:
    tree: str
    kind: str
    rate: float  # requests/s the server answered in the window
    locust_cores: float
    server_cores: float

    @property
    def per_core(self) -> float:
        return self.rate / self.locust_cores if self.locust_cores > 0 else 0.0


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU of a process and its live children."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def answered(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{COUNT_PATH}", timeout=5) as r:
        return int(r.read())


def pinned(cores: list[int] | None):
    return (lambda: os.sched_setaffinity(0, cores)) if cores else None


def start_server(port: int, cores: list[int] | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "granian", "--interface", "rsgi", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--runtime-threads", "1", "--no-ws", "--log-level", "warning",
           "loadtest.bench.trivial:app"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, preexec_fn=pinned(cores), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            answered(port)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"generator-ceiling: granian did not answer on port {port} within {START_TIMEOUT_S:g}s")


def locust_command(tree: Path, kind: str, port: int, args, out: Path) -> list[str]:
    run_s = WARM_S + args.seconds + 2.0
    base = [sys.executable, "-m", "locust", "--headless", "--only-summary", "--host", f"http://127.0.0.1:{port}",
            "--run-time", f"{run_s + 3:g}s"]  # fmt: skip
    generator = tree / "loadtest" / "generator"
    identity = ["--identity-file", str(out / f"{kind}.identity.jsonl")]
    if kind == "open":
        ladder = ["--tune-ladder", f"{args.rate:g}:{run_s:g}", "--tune-paths", "/:1"]
        return [*base, "-f", str(generator / "arrivals.py"), "--users", "1", "--spawn-rate", "1",
                *identity, *ladder, "ArrivalUser"]  # fmt: skip
    users = ["--users", str(args.users), "--spawn-rate", str(args.users)]
    if kind == "closed":
        return [*base, "-f", str(generator / "locustfile.py"), *users, *identity, "HelloUser"]
    return [*base, "-f", str(PROJECT_ROOT / "loadtest" / "generator" / "bare.py"), *users, "BareUser"]


def measure(tree: tuple[str, Path], kind: str, server: psutil.Process, port: int, args, cores) -> Sample:
    name, path = tree
    with tempfile.TemporaryDirectory(prefix="generator-ceiling-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(path)}
        env.pop("LAB_HOSTS", None)
        cmd = locust_command(path, kind, port, args, Path(tmp))
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, preexec_fn=pinned(cores),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            first = answered(port)
            deadline = time.monotonic() + START_TIMEOUT_S
            while answered(port) == first and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(WARM_S)
            gen = psutil.Process(proc.pid)
            n0, g0, s0, t0 = answered(port), cpu_seconds(gen), cpu_seconds(server), time.monotonic()
            time.sleep(args.seconds)
            n1, g1, s1, t1 = answered(port), cpu_seconds(gen), cpu_seconds(server), time.monotonic()
        finally:
            try:
                proc.wait(timeout=args.seconds + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    seconds = t1 - t0
    return Sample(name, kind, (n1 - n0) / seconds, (g1 - g0) / seconds, (s1 - s0) / seconds)


def table(samples: list[Sample], trees: list[str]) -> list[str]:
    lines = [
        "| generator | checkout | rounds | requests/s | locust cores | requests per core | server cores |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        for tree in trees:
            rows = [s for s in samples if s.kind == kind and s.tree == tree]
            if not rows:
                continue
            per_core = [s.per_core for s in rows]
            server = statistics.median(s.server_cores for s in rows)
            mark = " (server-bound?)" if server > SERVER_BOUND else ""
            lines.append(
                f"| {kind} | {tree} | {len(rows)} | {statistics.median(s.rate for s in rows):,.0f} "
                f"| {statistics.median(s.locust_cores for s in rows):.2f} "
                f"| {statistics.median(per_core):,.0f} [{min(per_core):,.0f}-{max(per_core):,.0f}] "
                f"| {server:.2f}{mark} |"
            )
    return lines


def parse_args(argv: list[str] | None):
    parser = OneLineParser(prog="python -m loadtest.bench.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds, every kind once a round (default 3)")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds a run (default 6)")
    parser.add_argument("--rate", type=float, default=2500.0, help="open loop's arrival rate, req/s")
    parser.add_argument("--users", type=int, default=8, help="closed loop's users (default 8)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="which of open,closed,bare (default all)")
    parser.add_argument("--baseline", type=Path, help="another checkout measured in the same rounds")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.rate <= 0 or args.users < 1:
        parser.error("--rounds, --seconds, --rate and --users must be positive")
    args.kinds = [k for k in args.kinds.split(",") if k]
    if not args.kinds or set(args.kinds) - set(KINDS):
        parser.error(f"--kinds: expected some of {','.join(KINDS)}, got {','.join(args.kinds)!r}")
    if args.baseline and not (args.baseline / "loadtest" / "generator" / "arrivals.py").exists():
        parser.error(f"--baseline {args.baseline}: no loadtest/generator/arrivals.py there")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    server_cores, generator_cores = ([cores[-1]], [cores[0]]) if len(cores) >= 2 else (None, None)
    trees = [("this", PROJECT_ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    port = free_port()
    before = load_average()
    server = start_server(port, server_cores)
    samples: list[Sample] = []
    try:
        handle = psutil.Process(server.pid)
        for r in range(args.rounds):
            order = trees if r % 2 == 0 else trees[::-1]  # neither checkout always runs first
            for kind in args.kinds:
                for tree in order:
                    if kind == "bare" and tree[0] != "this":
                        continue  # the same file in both: measured once a round
                    sample = measure(tree, kind, handle, port, args, generator_cores)
                    samples.append(sample)
                    print(f"round {r + 1} {kind:6s} {tree[0]:8s} {sample.rate:8,.0f} req/s  locust "
                          f"{sample.locust_cores:.2f} cores  {sample.per_core:8,.0f} per core  server "
                          f"{sample.server_cores:.2f}", file=sys.stderr)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    after = load_average()
    where = f"server on core {server_cores}, locust on core {generator_cores}" if server_cores else "unpinned"
    print(f"generator ceiling: {args.rounds} round(s) of {args.seconds:g}s, {where}; load average "
          f"{before:.2f} before, {after:.2f} after; open loop offered {args.rate:g} req/s, closed loop "
          f"{args.users} users")  # fmt: skip
    print("\n".join(table(samples, [t[0] for t in trees])))
    if args.json:
        args.json.write_text(json.dumps([asdict(s) | {"per_core": s.per_core} for s in samples], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
