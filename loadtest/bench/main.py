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
import shutil
import sys
import tempfile
from pathlib import Path

from loadtest.bench.goals import BENCH_TARGETS, check_goals, native_ratios
from loadtest.bench.measuring import bench_row, measure_round
from loadtest.bench.text import report
from loadtest.registry import records
from loadtest.registry.paths import RESULTS
from loadtest.registry.records import BenchParameters, BenchRound, BenchRun, RunError
from loadtest.registry.targets import OUR_APP, Target, lookup
from loadtest.reporting import bench_diff
from loadtest.run.environment import load_average, machine_record, write_rerun
from server.oneline import OneLineParser


def environment(started: str, finished: str, loads: tuple, argv: list[str]) -> dict:
    return {"kind": "bench", **machine_record(started, finished, loads, argv)}


def write_run(out: Path, run: BenchRun, env: dict, argv: list[str]) -> None:
    records.write_bench(out, run)
    records.write_env(out, env)
    write_rerun(out, argv, None, module="loadtest.bench")


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
    rounds: dict[str, list[BenchRound]] = {t.name: [] for t in chosen}
    for round_no in range(1, args.rounds + 1):  # interleaved, so a burst of other load hits every target
        for target in chosen:
            print(f"round {round_no}/{args.rounds}: measuring {target.name} ...", file=sys.stderr, flush=True)
            rounds[target.name].append(measure_round(target, args, logs))
    summaries = [bench_row(t, rounds[t.name]) for t in chosen]
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
