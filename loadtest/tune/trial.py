"""One shape measured at target arrival rates: a fresh server, one ladder, its verdicts.

- The server is started by the session's target runner (``Session.runner``: a
  local process tree pinned to the budget's cores, or a container under a CPU
  quota and memory limit, ``--runtime``); this module never asks which.
- The load is ``loadtest/generator/arrivals.py`` (open loop, run by
  ``locustrun.run_argv``) on this machine, pinned to the cores the server is not
  pinned to when any remain (``generator_cores``), so it cannot take the server's
  cores; with ``--cpus`` covering every core it runs unpinned and competes with the
  server (the report records the generator's CPU and the load average). Other
  processes on the machine are not kept off either set.
- ``--generator-workers N`` runs locust's own distributed mode (``--processes N``:
  a master and N workers, one ``ArrivalUser`` each sending 1/N of every step's
  rate); ``--expect-workers N`` makes this locust a master that waits for N
  workers started elsewhere, with the server bound where they can reach it
  (``Launch.host``: the generator's bind address, loopback otherwise).
- A step is generator-bound (``ladder.Step.generator_bound``) when a locust
  process saturated its core during it (``verdicts.SATURATED``), or when
  requests went missing while the answered ones met every objective.
- Memory is the peak of the server's memory samples during the ladder (PSS of a
  local tree, the cgroup's charge of a container); CPU is the server's cores used
  during the step that set the figure.
- A shape the OOM killer struck fails with that reason (``oom_error``), and every
  round records what confined the server (its ``Envelope`` and ``throttling``).

What this module does not know: which shapes are worth measuring.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadtest.measure.cpuwatch import Reading, Watch
from loadtest.measure.verdicts import SATURATED
from loadtest.registry.paths import PROJECT_ROOT
from loadtest.registry.workload import Workload
from loadtest.run import locustrun, processes
from loadtest.run.local import LocalRunner
from loadtest.run.runner import START_TIMEOUT_S, Envelope, Launch, RunnerFactory, TargetRunner
from loadtest.run.shim import staged
from loadtest.run.team import Team
from loadtest.tune import ladder
from loadtest.tune.candidate import Round
from loadtest.tune.candidates import Shape
from loadtest.tune.settings import Generator, MiB, Slo

ARRIVALS = PROJECT_ROOT / "loadtest" / "generator" / "arrivals.py"
MEMORY_EVERY = 4  # PSS every 4th CPU sample (once a second)
TIMEOUT_FACTOR = 10.0  # a request unanswered after 10 x the largest objective fails as a timeout
MIN_TIMEOUT_S = 5.0
PROGRESS_S = 5.0
SETTLED_CORES = 0.3  # a server tree using less CPU than this, idle, has finished booting its workers
SETTLE_SAMPLE_S = 0.5
SETTLE_TIMEOUT_S = 90.0
EXPECT_MASTER_PORT = 5557  # locust's default: what workers elsewhere connect to (docker/workers.yml too)
WORKLOAD_FILE = "workload.json"  # in the run directory: the requests the generator sends
EXPECT_WAIT_S = 300.0  # how long a master waits for workers from elsewhere before the run is killed


@dataclass
class Session:
    """What every measurement of one tune run shares."""

    app: str
    paths: list[tuple[str, float]]
    slo: Slo
    cores: list[int]
    out: Path
    seed: int
    t0: float = field(default_factory=time.monotonic)
    step_s: float = ladder.STEP_S
    locustfile: Path | None = None  # the workload as the team's user classes instead of paths
    workload: Workload | None = None  # the workload as requests (methods, headers, bodies, expected answers)
    runner: RunnerFactory = LocalRunner  # what starts each candidate (--runtime)
    generator: Generator = field(default_factory=Generator)
    team: Team = field(default_factory=Team)  # the app's directory, environment and interpreter
    serial: int = 0
    status: str = ""  # prefix of progress lines (what is measured, time left)

    def workload_arg(self) -> list[str]:
        """``--tune-workload``: the file in the run directory, or the JSON itself for workers elsewhere."""
        if self.workload is None:
            return []
        if self.generator.expect:  # their machines do not have this run's directory
            return ["--tune-workload", json.dumps(self.workload.as_dict(), separators=(",", ":"))]
        path = self.out / WORKLOAD_FILE
        if not path.exists():
            self.workload.write(path)
        return ["--tune-workload", str(path)]

    def next_stem(self, shape: Shape) -> str:
        self.serial += 1
        return f"{self.serial:02d}-{shape.key.replace(' ', '-')}"


def timeout_s(slo: Slo) -> float:
    return max(TIMEOUT_FACTOR * max(slo.limits.values()) / 1000.0, MIN_TIMEOUT_S)


def locust_argv(session: Session, rates: list[float], step_s: float, url: str, prefix: Path) -> list[str]:
    ladder_arg = ",".join(f"{r:g}:{step_s:g}" for r in ladder.offered(rates))
    paths_arg = ",".join(f"{p}:{w:g}" for p, w in session.paths)
    users = ["--tune-user-file", str(session.locustfile)] if session.locustfile else []
    gen = session.generator
    n = max(gen.distributed, 1)  # one ArrivalUser per locust worker, each sending 1/n of the rate
    if gen.workers:
        # a master port of its own: at the default 5557, another locust's workers on this machine join it
        port = str(processes.free_port())
        bind = ["--master-bind-host", gen.bind, "--master-bind-port", port]
        distributed = [
            "--processes",
            str(gen.workers),
            *bind,
            "--master-host",
            gen.bind,
            "--master-port",
            port,
        ]
    elif gen.expect:
        distributed = ["--master", "--expect-workers", str(gen.expect), "--master-bind-host", gen.bind,
                       "--master-bind-port", str(EXPECT_MASTER_PORT)]  # fmt: skip
    else:
        distributed = []
    return [
        sys.executable, "-m", "locust", "-f", str(ARRIVALS), "--headless", "--only-summary", *distributed,
        "--users", str(n), "--spawn-rate", str(n), "--run-time", f"{run_time(session, rates, step_s)}s",
        "--host", url, "--csv", str(prefix),
        "--identity-file", f"{prefix}.identity.jsonl",
        "--tune-ladder", ladder_arg, "--tune-paths", paths_arg, "--tune-slo", session.slo.generator_arg(),
        "--tune-seed", str(session.seed + session.serial), "--tune-timeout", f"{timeout_s(session.slo):g}",
        *users, *session.workload_arg(), "ArrivalUser",
    ]  # fmt: skip


def run_time(session: Session, rates: list[float], step_s: float) -> int:
    return int(len(ladder.offered(rates)) * step_s + timeout_s(session.slo) + 5)


def step_window(records: list[dict]) -> tuple[float, float] | None:
    times = [float(r["t"]) for r in records if r.get("t") is not None]
    return (min(times), max(times)) if len(times) >= 2 else None


def settle(
    runner: TargetRunner, quiet_cores: float = SETTLED_CORES, timeout: float = SETTLE_TIMEOUT_S
) -> float:
    """Wait until the server's CPU use falls below ``quiet_cores``: every worker has booted.

    The first worker answering ``/health`` does not mean the others have
    imported the app: 48 workers booting on 2 busy cores take tens of seconds,
    and load sent meanwhile measures the boot.  Returns the seconds waited.
    """
    started = time.monotonic()
    before: tuple[float, Reading] | None = None
    while time.monotonic() - started < timeout:
        now = runner.usage()
        if now is None and (before is not None or not runner.alive()):
            break  # it has exited: nothing to wait for
        at = (now.at or time.time()) if now is not None else 0.0
        fresh = now is not None and (before is None or at > before[0])  # the engine's stats: once a second
        if fresh and before is not None and (now.cpu_s - before[1].cpu_s) / (at - before[0]) < quiet_cores:
            break
        if fresh:
            before = (at, now)
        time.sleep(SETTLE_SAMPLE_S)
    return time.monotonic() - started


@dataclass
class Served:
    """One ladder offered to one shape: locust's run and the server tree's samples."""

    run: locustrun.LocustRun | None
    watch: Watch | None
    seconds: float
    error: str = ""
    runqueue_s: float | None = None  # seconds the server tree's threads waited for a core during the ladder
    envelope: Envelope | None = None  # what confined the server (runtime, quota, limit, OOM kills)
    start_s: float | None = None  # seconds from start to its first HTTP answer (deploy's startup probe)


def runqueue_seconds(procs: list[psutil.Process]) -> float | None:
    """Seconds the processes' live threads have waited on a run queue (``/proc/<pid>/task/*/schedstat``).

    Linux only, and only where the backend sees the processes; None otherwise.  Time
    waiting for a core is neither CPU nor I/O: on a busy machine it would otherwise
    read as the app waiting on I/O.
    """
    total, found = 0, False
    for proc in procs:
        for task in Path(f"/proc/{proc.pid}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[1])
                found = True
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e9 if found else None


def generator_cores(server_cores: list[int]) -> list[int] | None:
    """The cores this process may use that the server is not pinned to; None when none remain."""
    rest = sorted(os.sched_getaffinity(0) - set(server_cores))
    return rest or None


def serve_ladder(session: Session, shape: Shape, rates: list[float], step_s: float | None = None) -> Served:
    """Start the shape with the session's runner, offer it the ladder (``step_s`` a step), stop it."""
    step_s = step_s or session.step_s
    started = time.monotonic()
    launch = Launch(
        name=shape.family.name,
        target=shape.target(),
        log_dir=session.out / "logs",
        app=session.app,
        cores=tuple(session.cores),
        host=session.generator.bind,  # loopback unless workers from elsewhere must reach the server
        stem=session.next_stem(shape),
        cwd=session.team.chdir,
        env=session.team.env,
        python=session.team.python if session.team.venv else None,
        shim=None if session.team.app.demo else staged(),
    )
    with session.runner(launch) as server:
        if not (server.start() and server.wait_ready(START_TIMEOUT_S)):
            why = f"{server.problem}; {server.stderr_tail(1)}"
            server.stop()
            return Served(None, None, time.monotonic() - started, why, envelope=server.envelope())
        start_s = time.monotonic() - started
        settle(server)
        queued_before = runqueue_seconds(server.processes())
        watch = Watch(server.usage, memory_every=MEMORY_EVERY).start()
        prefix = session.out / "locust" / launch.stem
        try:
            argv = locust_argv(session, rates, step_s, server.url, prefix)
            duration = run_time(session, rates, step_s)
            if session.generator.expect:
                duration += int(EXPECT_WAIT_S)
            run = locustrun.run_argv(
                argv,
                prefix,
                duration,
                session.status,
                session.t0,
                every=PROGRESS_S,
                cores=generator_cores(session.cores),
            )
        finally:
            watch.stop()
        queued_after = runqueue_seconds(server.processes())
    queued = None if queued_before is None or queued_after is None else max(queued_after - queued_before, 0.0)
    envelope = server.envelope()  # after the stop: the OOM kills of the whole life
    return Served(run, watch, time.monotonic() - started, oom_error(envelope), queued, envelope, start_s)


def oom_error(envelope: Envelope) -> str:
    """A shape the OOM killer struck failed, whatever its figures: it does not fit its memory limit."""
    if not envelope.oom_kills and not envelope.oom_killed:
        return ""
    limit = f"{envelope.memory_limit_mb:.0f} MiB" if envelope.memory_limit_mb else "its memory limit"
    return f"killed by the OOM killer ({envelope.oom_kills or 1} kill(s) at {limit})"


def measure(session: Session, shape: Shape, rates: list[float]) -> Round:
    """The round's verdicts for one shape and one ladder (see the module's policy)."""
    served = serve_ladder(session, shape, rates)
    if served.run is None or served.watch is None:
        failed = Round(rates, [], None, None, served.seconds, served.error, envelope=served.envelope)
        if served.envelope is not None and served.watch is not None:
            failed.throttling, failed.throttling_by_step = throttling(served.watch, [])
        return failed
    result = figures(session, rates, served.run, served.watch, served.seconds)
    by_step = ladder.by_step(served.run.records)
    # one window per judged step, as ``judge_ladder`` numbers them: a step nothing was sent in has none
    windows = [step_window(ladder.judged(by_step, i)) for i in range(len(rates))]
    result.envelope = served.envelope
    if served.envelope is not None:
        result.throttling, result.throttling_by_step = throttling(served.watch, windows)
    result.start_s = served.start_s
    result.error = result.error or served.error
    return result


def throttling(
    watch: Watch, windows: list[tuple[float, float] | None]
) -> tuple[dict[str, float] | None, list[dict[str, float]] | None]:
    """CPU throttling (the quota's periods, throttled periods, seconds throttled) over the whole
    ladder and per judged arrival-rate step (aligned with the round's steps), as the runner's
    counters grew; (None, None) where the runtime imposes no quota.
    """
    if not watch.counters:
        return None, None
    whole = watch.counted(watch.counters[0][0], watch.counters[-1][0])
    return whole, [watch.counted(*w) if w else {} for w in windows]


def figures(
    session: Session, rates: list[float], run: locustrun.LocustRun, watch: Watch, seconds: float
) -> Round:
    if not run.records:
        why = run.log_tail.splitlines()[-1] if run.log_tail else f"locust exit {run.exit_code}"
        return Round(rates, [], None, None, seconds, f"no responses recorded: {why}")
    steps = ladder.judge_ladder(
        rates, session.step_s, run.records, session.slo.limits, session.slo.max_error_rate
    )
    notes = generator_limits(steps, run, session.slo.limits)
    _, step, _ = ladder.rate_at_slo(steps)
    cpu = None
    if step is not None:
        span = step_window(ladder.judged(ladder.by_step(run.records), steps.index(step)))
        if span is not None:
            cpu = watch.cores(*span)
    peak = max((m[1] for m in watch.memory), default=None)
    if not any(r.get("start") for r in run.records):
        notes.append("no identity headers: in-app times unknown")
    return Round(rates, steps, peak / MiB if peak else None, cpu, seconds, "", notes)


def generator_limits(
    steps: list[ladder.Step], run: locustrun.LocustRun, limits: dict[float, float]
) -> list[str]:
    """Mark each generator-bound step (see the module's policy); a note for the first of them."""
    by_step = ladder.by_step(run.records)
    notes: list[str] = []
    for i, step in enumerate(steps):
        span = step_window(ladder.judged(by_step, i))
        busiest = run.watch.busiest(*span) if span is not None else None
        step.generator_busiest = busiest
        saturated = busiest is not None and busiest >= SATURATED
        step.generator_bound = saturated or ladder.short_of_rate(step, limits)
        if step.generator_bound and not notes:
            notes.append(
                f"generator saturated at {step.rate:g} req/s (busiest locust process {busiest:.0%})"
                if saturated
                else f"generator short of {step.rate:g} req/s: {step.missing} requests never sent"
            )
    return notes


def app_times_ms(records: list[dict]) -> list[float]:
    """Milliseconds each answered request spent inside the app (server-side start/end headers)."""
    return [
        (float(r["end"]) - float(r["start"])) * 1000.0
        for r in records
        if r.get("ok") and r.get("start") and r.get("end")
    ]
