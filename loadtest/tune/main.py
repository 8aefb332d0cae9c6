"""The tune run: calibrate, predict, search, recommend, write ``results/tune-<timestamp>/``.

Progress goes to stdout as it happens (what is measured now, the time budget
left); when the run ends, the recommendation comes first in the closing block,
then where the files are.  Bad arguments: one line, exit 2 (``budget.parse``);
a budget below one worker's measured memory is reported the same way, after
calibration measured it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import time
from pathlib import Path

from loadtest import records
from loadtest.measure import verdicts
from loadtest.run import environment
from loadtest.run.local import LocalRunner
from loadtest.run.plan import UsageError
from loadtest.run.runner import RunnerFactory
from loadtest.tune import budget as budget_args
from loadtest.tune import runtime
from loadtest.tune import search as searching
from loadtest.tune.budget import TuneArgs
from loadtest.tune.calibrate import CalibrationError, calibrate
from loadtest.tune.candidates import WORKER_STEPS, baseline, families
from loadtest.tune.measure import Session, measure
from loadtest.tune.model import Calibration
from loadtest.tune.recommend import Verdict, against, verdict
from loadtest.tune.report import document

MODULE = "loadtest.tune"
WRITE_ALLOWANCE_S = 15.0  # kept from the time budget for the charts and files at the end


def clock_printer(t0: float, deadline: float):
    def say(line: str) -> None:
        now = time.monotonic()
        print(f"[tune {now - t0:4.0f} s, {max(deadline - now, 0):4.0f} s left] {line}", flush=True)

    return say


def busy_machine(*loads: float | None) -> str:
    """A caution line when other work kept the machine busy (``verdicts.load_busy``)."""
    cores = os.cpu_count() or 1
    worst = max((x for x in loads if x is not None), default=None)
    if worst is None or not verdicts.load_busy(worst, cores):
        return ""
    return (
        f"Caution: the machine was busy (load average up to {worst:.1f} on {cores} cores): the figures "
        "are noisy and lower than this box gives a server alone; rerun on a quiet machine."
    )


def max_workers(cal: Calibration, memory_mb: float) -> int:
    """Most worker processes the memory budget holds, by the calibration (1 to the grid's top)."""
    room = (memory_mb - cal.base_mb) / max(cal.worker_mb, 1.0)
    return int(max(1, min(math.floor(room), WORKER_STEPS[-1])))


def check_one_worker(cal: Calibration, args: TuneArgs) -> None:
    one = cal.base_mb + cal.worker_mb
    if one > args.budget.memory_mb:
        raise UsageError(
            f"--memory {args.budget.memory_mb:.0f} MiB is below one worker's measured memory ({one:.0f} MiB)"
        )


def run(args: TuneArgs, runner: RunnerFactory = LocalRunner) -> int:
    t0 = time.monotonic()
    deadline = t0 + args.minutes * 60.0 - WRITE_ALLOWANCE_S
    started = dt.datetime.now(dt.UTC)
    out = args.out or Path("results") / f"tune-{started.strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True, exist_ok=True)
    load_before = environment.load_average()
    say = clock_printer(t0, deadline)
    b, slo = args.budget, args.slo
    say(
        f"app {args.app}; workload {args.workload()}; "
        f"objectives {slo.text()}, errors <= {slo.max_error_rate:.2%}"
    )
    say(
        f"budget {b.cpus} core(s) (from {b.cpus_source}; server pinned to {b.cores()}), "
        f"{b.memory_mb:.0f} MiB (from {b.memory_source}); {args.minutes:g} min; "
        f"load average {load_before or 0:.1f}"
    )
    session = Session(args.app, args.paths, slo, b.cores(), out, args.seed, t0, args.step_s)
    session.locustfile = args.locustfile
    session.runner = runner
    try:
        cal = calibrate(session, say)
        check_one_worker(cal, args)
    except CalibrationError as exc:
        print(f"python -m loadtest.tune: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except UsageError as exc:
        print(f"python -m loadtest.tune: error: {exc}", file=sys.stderr, flush=True)
        return 2
    say(
        f"calibrated: CPU {cal.cpu_s * 1000:.2f} ms and {cal.wall_s * 1000:.1f} ms in the app per request "
        f"(waiting {cal.io_share:.0%}); base {cal.base_mb:.0f} MB, worker {cal.worker_mb:.0f} MB, "
        f"thread {cal.thread_mb:.2f} MB"
    )
    top = max_workers(cal, b.memory_mb)
    cands = searching.predicted(families(args.servers), cal, b.cpus, slo.limits, b.memory_mb, top)
    pending = [c for c in cands if c.status == "pending"]
    say(
        f"{len(cands)} shapes predicted, {len(cands) - len(pending)} pruned; "
        f"measuring up to {len(pending) + 1}"
    )

    def measured(shape, rates):
        session.status = f"[tune, budget {args.minutes * 60:.0f} s]   {shape.key}:"
        return measure(session, shape, rates)

    s = searching.search(
        cands,
        baseline(b.cpus),
        measured,
        time.monotonic,
        deadline,
        b.memory_mb,
        top,
        cal,
        b.cpus,
        slo.limits,
        say,
    )
    base = next(c for c in s.candidates if c.is_baseline)
    v = verdict(s.candidates, base, cal, b, slo, args.app)
    caution = busy_machine(load_before, environment.load_average())
    if caution:
        v.headline.append(caution)
    wall = time.monotonic() - t0
    finished = dt.datetime.now(dt.UTC)
    write(out, args, cal, s, v, wall, started, finished, load_before)
    print()
    for line in v.headline:
        print(line)
    print(f"wrote {environment.shown(out / 'recommendation.md')} and .html, .json ({wall:.0f} s)", flush=True)
    return 0


def write(
    out: Path,
    args: TuneArgs,
    cal: Calibration,
    s: searching.Search,
    v: Verdict,
    wall: float,
    started: dt.datetime,
    finished: dt.datetime,
    load_before: float | None,
) -> None:
    from loadtest.reporting import recommendation as rendering

    load_after = environment.load_average()
    result = document(args, cal, s.candidates, v, wall, (load_before, load_after))
    if args.against is not None:
        earlier = records.load_recommendation(args.against).as_dict()
        result["rerun_check"] = against(earlier, result)
        v.headline.append(f"Rerun: {result['rerun_check']}.")
    records.write_recommendation(out, result)
    rendering.write(out, result)
    plan = {"seed": args.seed, "time_budget_s": args.minutes * 60.0}
    env = environment.environment(
        started.isoformat(),
        finished.isoformat(),
        plan,
        args.argv,
        (load_before, load_after),
        "loadtest/generator/arrivals.py",
    )
    rerun_argv = [*without_against(args.argv), "--against", str(out.resolve())]
    env["rerun"] = environment.write_rerun(out, rerun_argv, args.seed, module=MODULE)
    records.write_env(out, env, indent=1)


def without_against(argv: list[str]) -> list[str]:
    """The arguments without any ``--against DIR`` (rerun.sh names its own run instead)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--against":
            skip = True
        elif not arg.startswith("--against="):
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = budget_args.build_parser()
    try:
        args = budget_args.parse(argv)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        with runtime.runners(args, lambda line: print(f"[tune] {line}", flush=True)) as runner:
            return run(args, runner)
    except runtime.RuntimeUnavailable as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    except KeyboardInterrupt:  # every server and container of the run has been stopped on the way out
        parser.exit(130, f"{parser.prog}: interrupted\n")


if __name__ == "__main__":
    sys.exit(main())
