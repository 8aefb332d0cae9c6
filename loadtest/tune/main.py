"""The tune run: calibrate, predict, search, recommend, write ``results/tune-<timestamp>/``.

Progress goes to stdout as it happens (what is measured now, the time budget
left); when the run ends, the recommendation comes first in the closing block,
then where the files are (``deploy/`` beside the record when one is recommended).
An app that answers errors by itself ends the run after calibration, with that
verdict.  Bad arguments: one line, exit 2 (``budget.parse``); a budget below one
worker's measured memory is reported the same way, after calibration measured it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import time
from pathlib import Path

from loadtest.measure import verdicts
from loadtest.registry import records, targets
from loadtest.run import environment
from loadtest.run.local import LocalRunner
from loadtest.run.plan import UsageError
from loadtest.run.runner import RunnerFactory
from loadtest.tune import budget as budget_args
from loadtest.tune import deploy, runtime
from loadtest.tune import search as searching
from loadtest.tune.budget import TuneArgs
from loadtest.tune.calibrate import CalibrationError, calibrate
from loadtest.tune.candidates import WORKER_STEPS, baseline, families
from loadtest.tune.measure import EXPECT_MASTER_PORT, Session, measure
from loadtest.tune.model import Calibration, predict
from loadtest.tune.recommend import Context, Verdict, against, verdict
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


def calibration_lines(cal: Calibration) -> list[str]:
    """The calibration as printed: the workload's means, then each path's (CPU never above wall time)."""
    memory = (
        "memory not measured (stopped early)"
        if cal.app_errors
        else f"base {cal.base_mb:.0f} MB, worker {cal.worker_mb:.0f} MB, thread {cal.thread_mb:.2f} MB"
    )
    lines = [
        f"calibrated: in the app CPU {cal.in_app_cpu_s * 1000:.2f} ms of {cal.wall_s * 1000:.2f} ms mean per "
        f"request (waiting {cal.io_share:.0%}); server CPU {cal.cpu_s * 1000:.2f} ms per request; {memory}"
    ]
    for p in cal.paths:
        ps = ", ".join(f"p{q:g} {ms:.1f}" for q, ms in p.app_ms.items())
        errors = ", ".join(f"{n} x {status}" for status, n in sorted(p.errors.items()))
        lines.append(
            f"  {p.name} ({p.weight:.0%} of requests, {p.requests} seen): {p.app_ms_mean:.2f} ms mean in the "
            f"app ({ps} ms), CPU {p.cpu_ms_mean:.2f} ms" + (f"; errors {errors}" if errors else "")
        )
    return lines


def expect_workers_hint(args: TuneArgs) -> str:
    g = args.generator
    return (
        f"waiting for {g.expect} locust worker(s) for each ladder (each ladder is a new master, so keep "
        f"them restarting): on each machine run  while true; do python -m locust -f "
        f"loadtest/generator/arrivals.py --worker --master-host {g.bind} --master-port {EXPECT_MASTER_PORT}; "
        "sleep 1; done"
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
    if args.generator.workers:
        say(f"generator: a locust master and {args.generator.workers} worker(s) (locust's distributed mode)")
    if args.generator.expect:
        say(expect_workers_hint(args))
    session = Session(
        app=args.app,
        paths=args.paths,
        slo=slo,
        cores=b.cores(),
        out=out,
        seed=args.seed,
        t0=t0,
        step_s=args.step_s,
        locustfile=args.locustfile,
        generator=args.generator,
        runner=runner,
    )
    try:
        cal = calibrate(session, say)
        if not cal.app_errors:
            check_one_worker(cal, args)
    except CalibrationError as exc:
        print(f"python -m loadtest.tune: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except UsageError as exc:
        print(f"python -m loadtest.tune: error: {exc}", file=sys.stderr, flush=True)
        return 2
    for line in calibration_lines(cal):
        say(line)
    base_shape = baseline(b.cpus)
    if cal.app_errors:
        say(f"stopping: {cal.app_errors}")
        cands = [
            searching.Candidate(base_shape, predict(base_shape, cal, b.cpus, slo.limits), is_baseline=True)
        ]
        cands[0].status, cands[0].why = "not reached", "not measured: the app's own errors end the run"
        unmeasured: tuple[str, ...] = ()
        needed = None
    else:
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
            base_shape=base_shape,
            measure=measured,
            clock=time.monotonic,
            deadline=deadline,
            memory_mb=b.memory_mb,
            max_workers=top,
            cal=cal,
            cpus=b.cpus,
            limits=slo.limits,
            say=say,
            recommendable=args.recommendable,
        )
        cands = s.candidates
        unmeasured = tuple(s.unmeasured_kinds())
        extra = s.seconds_for_unmeasured()
        needed = math.ceil((args.minutes * 60.0 + extra) / 60.0) if unmeasured else None
    base = next(c for c in cands if c.is_baseline)
    ctx = Context(
        cal=cal,
        budget=b,
        slo=slo,
        app=args.app,
        minutes=args.minutes,
        recommendable=args.recommendable,
        unmeasured=unmeasured,
        minutes_needed=needed,
    )
    v = verdict(cands, base, ctx)
    caution = busy_machine(load_before, environment.load_average())
    if caution:
        v.headline.append(caution)
    wall = time.monotonic() - t0
    finished = dt.datetime.now(dt.UTC)
    files = write(out, args, cal, cands, v, wall, (started, finished), load_before)
    print()
    for line in v.headline:
        print(line)
    print(f"wrote {environment.shown(out / 'recommendation.md')} and .html, .json ({wall:.0f} s)", flush=True)
    for path in files:
        print(f"wrote {environment.shown(path)}", flush=True)
    return 0


def write(
    out: Path,
    args: TuneArgs,
    cal: Calibration,
    cands: list[searching.Candidate],
    v: Verdict,
    wall: float,
    times: tuple[dt.datetime, dt.datetime],
    load_before: float | None,
) -> list[Path]:
    """recommendation.json, .md, .html, env.json, rerun.sh; the deploy files (returned), if any."""
    from loadtest.reporting import recommendation as rendering

    started, finished = times
    load_after = environment.load_average()
    result = document(args, cal, cands, v, wall, (load_before, load_after))
    if args.against is not None:
        earlier = records.load_recommendation(args.against).as_dict()
        result["rerun_check"] = against(earlier, result)
        v.headline.append(f"Rerun: {result['rerun_check']}.")
    files = deploy.write(out, result, image=args.image or targets.COMPOSE_IMAGE)
    result["deploy"] = [str(p.relative_to(out)) for p in files]
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
    return files


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
