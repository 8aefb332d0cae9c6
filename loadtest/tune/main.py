"""The tune run: calibrate, predict, search, recommend, write ``results/tune-<timestamp>/``.

Progress goes to stdout as it happens (what is measured now, the time budget
left); when the run ends, the recommendation comes first in the closing block,
then where the files are (``deploy/`` beside the record when one is recommended).
An app that answers errors by itself ends the run after calibration, with that
verdict.  Bad arguments: one line, exit 2 (``cli.parse``); a budget below one
worker's measured memory is reported the same way, after calibration measured it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadtest.measure import verdicts
from loadtest.registry import records, targets
from loadtest.run import environment
from loadtest.run.local import LocalRunner
from loadtest.run.plan import UsageError
from loadtest.run.runner import RunnerFactory
from loadtest.tune import cli, deploy, fleet, project, runtime, waits
from loadtest.tune.calibrate import Calibration, CalibrationError, calibrate
from loadtest.tune.candidate import Candidate, Status
from loadtest.tune.candidates import WORKER_STEPS, baseline, families, limit_summary
from loadtest.tune.model import predict
from loadtest.tune.recommend import Context, Verdict, against, verdict
from loadtest.tune.record import document
from loadtest.tune.search import predicted, search
from loadtest.tune.settings import Settings
from loadtest.tune.sharing import Sharing
from loadtest.tune.trial import EXPECT_MASTER_PORT, Session, measure

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


def check_one_worker(cal: Calibration, args: Settings) -> None:
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


def limit_line(limit: dict) -> str:
    """What --max-in-flight did to the grid, as one line."""
    return (
        f"--max-in-flight {limit['max_in_flight']}: {limit['kept']} shapes within it, "
        f"{limit['capped']} capped (the server's own option), {limit['pruned']} pruned"
        + (f" (e.g. {'; '.join(limit['examples'][:3])})" if limit["examples"] else "")
    )


def expect_workers_hint(args: Settings) -> str:
    g = args.generator
    return (
        f"waiting for {g.expect} locust worker(s) for each ladder (each ladder is a new master, so keep "
        f"them restarting): on each machine run  while true; do python -m locust -f "
        f"loadtest/generator/arrivals.py --worker --master-host {g.bind} --master-port {EXPECT_MASTER_PORT}; "
        "sleep 1; done"
    )


@dataclass(frozen=True)
class Start:
    """What the run fixed before measuring anything: its clock, deadline, directory and the machine's load."""

    t0: float
    deadline: float
    started: dt.datetime
    out: Path
    load_before: float | None
    say: Callable[[str], None]


@dataclass(frozen=True)
class Searched:
    """The candidates after the search, and what the time budget left out."""

    cands: list[Candidate]
    unmeasured: tuple[str, ...] = ()
    minutes_needed: float | None = None
    limit: dict | None = None  # what --max-in-flight did to the grid (candidates.limit_summary)


def run(args: Settings, runner: RunnerFactory = LocalRunner) -> int:
    """Prepare, calibrate, search, conclude, write, render; a calibration failure is one line (exit 1/2)."""
    start = prepare(args)
    session = session_for(args, start, runner)
    try:
        cal = calibrate_app(args, session, start.say)
    except CalibrationError as exc:
        print(f"python -m loadtest.tune: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except UsageError as exc:
        print(f"python -m loadtest.tune: error: {exc}", file=sys.stderr, flush=True)
        return 2
    found = search_shapes(args, cal, session, start)
    v = conclude(args, cal, found, start)
    wall = time.monotonic() - start.t0
    finished = dt.datetime.now(dt.UTC)
    shared = waits.shared_wait(cal, found.cands, args.budget.cpus)
    extra = {"in_flight_limit": found.limit, "shared_wait": shared.as_dict() if shared else None}
    times = (start.started, finished)
    files = write(start.out, args, cal, found.cands, v, wall, times, start.load_before, extra)
    render(v, start.out, files, wall)
    return 0


def prepare(args: Settings) -> Start:
    """The clock, the deadline and the directory, then what the run was given, before anything runs.

    The deadline keeps ``WRITE_ALLOWANCE_S`` back so the files are written inside ``--minutes``;
    the budget's sources are said first so a wrong default (a cgroup limit, ``TUNE_CPUS``) is seen
    before minutes are spent measuring under it.
    """
    t0 = time.monotonic()
    deadline = t0 + args.minutes * 60.0 - WRITE_ALLOWANCE_S
    started = dt.datetime.now(dt.UTC)
    out = args.out or Path("results") / f"tune-{started.strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True, exist_ok=True)
    load_before = environment.load_average()
    say = clock_printer(t0, deadline)
    b, slo = args.budget, args.slo
    say(
        f"app {args.app}; workload {args.workload_text()}; "
        f"objectives {slo.text()}, errors <= {slo.max_error_rate:.2%}"
    )
    say(
        f"budget {b.cpus} core(s) (from {b.cpus_source}; server pinned to {b.cores()}), "
        f"{b.memory_mb:.0f} MiB (from {b.memory_source}); {args.minutes:g} min; "
        f"load average {load_before or 0:.1f}"
    )
    if not args.app.demo:  # the demo runs from wsgi-lab's own tree: no project of the team's to name
        say(project.describe(args.team, args.runtime))
    for line in args.traffic.lines_text() if args.traffic else []:
        say(line)
    if args.generator.workers:
        say(f"generator: a locust master and {args.generator.workers} worker(s) (locust's distributed mode)")
    if args.generator.expect:
        say(expect_workers_hint(args))
    warning = Sharing.of(b.cpus, args.generator.expect).before()
    if warning:
        say(f"caution: {warning}")
    return Start(t0, deadline, started, out, load_before, say)


def session_for(args: Settings, start: Start, runner: RunnerFactory) -> Session:
    """One session for calibration and every trial: the same cores, seed and generator throughout."""
    return Session(
        app=str(args.app),
        paths=args.paths,
        slo=args.slo,
        cores=args.budget.cores(),
        out=start.out,
        seed=args.seed,
        t0=start.t0,
        step_s=args.step_s,
        locustfile=args.locustfile,
        generator=args.generator,
        runner=runner,
        team=args.team,
        workload=args.workload,
    )


def calibrate_app(args: Settings, session: Session, say: Callable[[str], None]) -> Calibration:
    """The app's costs, printed; a budget below one measured worker is a usage error only now.

    The memory check needs calibration's figure, so it cannot be made with the other flags' checks.
    """
    cal = calibrate(session, say)
    if not cal.app_errors:
        check_one_worker(cal, args)
    for line in calibration_lines(cal):
        say(line)
    return cal


def search_shapes(args: Settings, cal: Calibration, session: Session, start: Start) -> Searched:
    """Predict every shape, then measure within the time budget (``search.search``).

    An app that answers errors by itself ends the run here with the baseline unmeasured: no
    server shape fixes it, and measuring would spend the budget on its errors.
    """
    b, slo, say = args.budget, args.slo, start.say
    base_shape = baseline(b.cpus, args.max_in_flight)
    if cal.app_errors:
        say(f"stopping: {cal.app_errors}")
        base = Candidate(base_shape, predict(base_shape, cal, b.cpus, slo.limits), is_baseline=True)
        base.status, base.why = Status.NOT_REACHED, "not measured: the app's own errors end the run"
        return Searched([base])
    top = max_workers(cal, b.memory_mb)
    fams = families(args.servers, args.max_in_flight)
    limit = limit_summary(fams, top) if args.max_in_flight is not None else None
    if limit:
        say(limit_line(limit))
    cands = predicted(fams, cal, b.cpus, slo.limits, b.memory_mb, top)
    pending = [c for c in cands if c.status == Status.PENDING]
    pruned = len(cands) - len(pending)
    say(f"{len(cands)} shapes predicted, {pruned} pruned; measuring up to {len(pending) + 1}")

    def measured(shape, rates):
        session.status = f"[tune, budget {args.minutes * 60:.0f} s]   {shape.key}:"
        return measure(session, shape, rates)

    s = search(
        cands,
        base_shape=base_shape,
        measure=measured,
        clock=time.monotonic,
        deadline=start.deadline,
        memory_mb=b.memory_mb,
        max_workers=top,
        cal=cal,
        cpus=b.cpus,
        limits=slo.limits,
        say=say,
        recommendable=args.recommendable,
    )
    unmeasured = tuple(s.unmeasured_kinds())
    extra = s.seconds_for_unmeasured()
    needed = math.ceil((args.minutes * 60.0 + extra) / 60.0) if unmeasured else None
    return Searched(s.candidates, unmeasured, needed, limit)


def conclude(args: Settings, cal: Calibration, found: Searched, start: Start) -> Verdict:
    """The verdict, with a caution when the machine was busy (its figures are then low and noisy)."""
    base = next(c for c in found.cands if c.is_baseline)
    ctx = Context(
        cal=cal,
        budget=args.budget,
        slo=args.slo,
        app=str(args.app),
        minutes=args.minutes,
        unmeasured=found.unmeasured,
        minutes_needed=found.minutes_needed,
        sharing=Sharing.of(args.budget.cpus, args.generator.expect),
    )
    v = verdict(found.cands, base, ctx)
    shared = waits.shared_wait(cal, found.cands, args.budget.cpus)
    if shared is not None:
        v.headline.append(f"Inside the app: {shared.sentence(args.max_in_flight)}.")
    if found.limit:
        v.headline.append(limit_line(found.limit)[0].upper() + limit_line(found.limit)[1:] + ".")
    caution = busy_machine(start.load_before, environment.load_average())
    if caution:
        v.headline.append(caution)
    return v


def render(v: Verdict, out: Path, files: list[Path], wall: float) -> None:
    """The closing block: the recommendation first (what the user came for), then where the files are."""
    print()
    for line in v.headline:
        print(line)
    print(f"wrote {environment.shown(out / 'recommendation.md')} and .html, .json ({wall:.0f} s)", flush=True)
    for path in files:
        print(f"wrote {environment.shown(path)}", flush=True)


def write(
    out: Path,
    args: Settings,
    cal: Calibration,
    cands: list[Candidate],
    v: Verdict,
    wall: float,
    times: tuple[dt.datetime, dt.datetime],
    load_before: float | None,
    extra: dict | None = None,
) -> list[Path]:
    """recommendation.json, .md, .html, env.json, rerun.sh; the deploy files (returned), if any."""
    from loadtest.reporting import recommendation as rendering

    started, finished = times
    load_after = environment.load_average()
    rec = document(args, cal, cands, v, wall, (load_before, load_after))
    rec.extra.update(extra or {})
    if args.against is not None:
        rec.extra["rerun_check"] = against(
            records.load_recommendation(args.against).recommended, rec.recommended
        )
    # the fleet plan, the deploy files and the renderers read the record as the file states it
    result = {key: value for key, value in rec.as_dict().items() if key != records.FORMAT_KEY}
    if "rerun_check" in result:
        v.headline.append(f"Rerun: {result['rerun_check']}.")
    planned = plan_fleet(args, result)
    if planned is not None:
        result["fleet"] = planned.as_dict()
        v.headline.insert(0, planned.headline())
    elif args.target_rps is not None:
        v.headline.append(
            f"No replicas planned for {args.target_rps:,.0f} req/s: no shape met the objectives."
        )
    opts = deploy.Options(
        image=args.image or targets.COMPOSE_IMAGE,
        namespace=args.namespace,
        env_file=str(args.env_file) if args.env_file else None,
        env_names=tuple(sorted(args.env)),
    )
    files = deploy.write(out, result, opts)
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


def plan_fleet(args: Settings, result: dict) -> fleet.Plan | None:
    """Replicas for ``--target-rps`` (else the recording's busiest minute); None without a rate to plan for
    or a rate at the objectives."""
    traffic = args.traffic
    goal = fleet.target(
        args.target_rps, traffic.busiest_minute_rps if traffic else None, traffic.format if traffic else ""
    )
    if goal is None or not (result.get("recommended") or {}).get("rate_at_slo"):
        return None
    rate, source = goal
    return fleet.for_record(
        result, rate, utilisation=args.utilisation, max_replicas=args.max_replicas, source=source
    )


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
    parser = cli.build_parser()
    try:
        args = cli.parse(argv)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        with runtime.runners(args, lambda line: print(f"[tune] {line}", flush=True)) as (runner, args):
            return run(args, runner)
    except runtime.RuntimeUnavailable as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    except KeyboardInterrupt:  # every server and container of the run has been stopped on the way out
        parser.exit(130, f"{parser.prog}: interrupted\n")


if __name__ == "__main__":
    sys.exit(main())
