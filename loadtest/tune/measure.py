"""One shape measured at target arrival rates: a fresh server, one ladder, its verdicts.

- The server runs pinned to the budget's cores (``processes.start(cores=...)``:
  CPU affinity set before it starts, so every process it forks inherits it) --
  the tree cannot use more than ``--cpus`` cores whatever its worker count.
- The load is ``loadtest/generator/arrivals.py`` (open loop, run by
  ``locustrun.run_argv``), pinned to the cores the server is not pinned to when
  any remain (``generator_cores``), so it cannot take the server's cores; with
  ``--cpus`` equal to every core it runs unpinned and competes with the server
  (the report records the generator's CPU and the load average). Other
  processes on the machine are not kept off either set.
- ``--generator-workers N`` runs locust's own distributed mode (``--processes N``:
  a master and N workers, one ``ArrivalUser`` each sending 1/N of every step's
  rate); ``--expect-workers N`` makes this locust a master that waits for N
  workers started elsewhere, with the server bound where they can reach it.
- A step is generator-bound (``ladder.Step.generator_bound``) when a locust
  process saturated its core during it (``verdicts.SATURATED``), or when
  requests went missing while the answered ones met every objective.
- Memory is the peak PSS of the server tree (``cpuwatch.Watch`` sampling
  ``usage.memory``) during the ladder; CPU is the tree's cores used during the
  step that set the figure.

What this module does not know: which shapes are worth measuring.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadtest import targets
from loadtest.inserver import usage
from loadtest.measure.cpuwatch import Watch
from loadtest.measure.verdicts import SATURATED
from loadtest.run import locustrun, processes
from loadtest.tune import ladder
from loadtest.tune.budget import Generator, MiB, Slo
from loadtest.tune.candidates import Shape
from loadtest.tune.search import Round

ROOT = Path(__file__).resolve().parents[2]
ARRIVALS = ROOT / "loadtest" / "generator" / "arrivals.py"
START_TIMEOUT_S = 30.0
MEMORY_EVERY = 4  # PSS every 4th CPU sample (once a second)
TIMEOUT_FACTOR = 10.0  # a request unanswered after 10 x the largest objective fails as a timeout
MIN_TIMEOUT_S = 5.0
PROGRESS_S = 5.0
SETTLED_CORES = 0.3  # a server tree using less CPU than this, idle, has finished booting its workers
SETTLE_SAMPLE_S = 0.5
SETTLE_TIMEOUT_S = 90.0
EXPECT_MASTER_PORT = 5557  # locust's default: what workers elsewhere connect to (docker/workers.yml too)
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
    generator: Generator = field(default_factory=Generator)
    serial: int = 0
    status: str = ""  # prefix of progress lines (what is measured, time left)

    def next_stem(self, shape: Shape) -> str:
        self.serial += 1
        return f"{self.serial:02d}-{shape.key.replace(' ', '-')}"


def server_env(app: str, model: str) -> dict[str, str]:
    env = {**os.environ, "LAB_SERVER_MODEL": model, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), str(ROOT), env.get("PYTHONPATH", "")) if p)
    if app != targets.OUR_APP:
        env["LAB_BYO_APP"] = app
    return env


def served_app(app: str) -> str:
    """The demo app serves its identity headers itself; any other app goes through the BYO wrapper."""
    return app if app == targets.OUR_APP else targets.BYO_WRAPPER


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
        *users, "ArrivalUser",
    ]  # fmt: skip


def run_time(session: Session, rates: list[float], step_s: float) -> int:
    return int(len(ladder.offered(rates)) * step_s + timeout_s(session.slo) + 5)


def step_window(records: list[dict]) -> tuple[float, float] | None:
    times = [float(r["t"]) for r in records if r.get("t") is not None]
    return (min(times), max(times)) if len(times) >= 2 else None


def settle(pid: int, quiet_cores: float = SETTLED_CORES, timeout: float = SETTLE_TIMEOUT_S) -> float:
    """Wait until the server tree's CPU use falls below ``quiet_cores``: every worker has booted.

    The first worker answering ``/health`` does not mean the others have
    imported the app: 48 workers booting on 2 busy cores take tens of seconds,
    and load sent meanwhile measures the boot.  Returns the seconds waited.
    """
    started = time.monotonic()
    try:
        root = psutil.Process(pid)
        before = usage.cpu_seconds(root)
        while time.monotonic() - started < timeout:
            time.sleep(SETTLE_SAMPLE_S)
            now = usage.cpu_seconds(root)
            if (now - before) / SETTLE_SAMPLE_S < quiet_cores:
                break
            before = now
    except psutil.Error:
        pass
    return time.monotonic() - started


@dataclass
class Served:
    """One ladder offered to one shape: locust's run and the server tree's samples."""

    run: locustrun.LocustRun | None
    watch: Watch | None
    seconds: float
    error: str = ""
    runqueue_s: float | None = None  # seconds the server tree's threads waited for a core during the ladder


def runqueue_seconds(pid: int) -> float | None:
    """Seconds the tree's live threads have waited on a run queue (``/proc/<pid>/task/*/schedstat``).

    Linux only; None elsewhere.  Time waiting for a core is neither CPU nor I/O:
    on a busy machine it would otherwise read as the app waiting on I/O.
    """
    total, found = 0, False
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return None
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
    """Start the shape pinned to the budget's cores, offer it the ladder (``step_s`` a step), stop it."""
    step_s = step_s or session.step_s
    started = time.monotonic()
    stem = session.next_stem(shape)
    logs = session.out / "logs"
    port = processes.free_port()
    host = session.generator.bind  # loopback unless workers from elsewhere must reach the server
    url = f"http://{host}:{port}"
    argv = shape.command(served_app(session.app), port, host=host)
    env = server_env(session.app, shape.family.name)
    proc = processes.start(argv, logs, stem, env, os.getcwd(), cores=session.cores)
    try:
        status, problem = processes.wait_http(url + "/health", proc, START_TIMEOUT_S)
        if status is None:
            tail = processes.tail(logs / f"{stem}.stderr.log", 1)
            return Served(None, None, time.monotonic() - started, f"failed to start: {problem}; {tail}")
        settle(proc.pid)
        queued_before = runqueue_seconds(proc.pid)
        watch = Watch(proc.pid, memory_every=MEMORY_EVERY).start()
        prefix = session.out / "locust" / stem
        try:
            argv = locust_argv(session, rates, step_s, url, prefix)
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
        queued_after = runqueue_seconds(proc.pid)
    finally:
        processes.stop(proc)
    queued = None if queued_before is None or queued_after is None else max(queued_after - queued_before, 0.0)
    return Served(run, watch, time.monotonic() - started, runqueue_s=queued)


def measure(session: Session, shape: Shape, rates: list[float]) -> Round:
    """The round's verdicts for one shape and one ladder (see the module's policy)."""
    served = serve_ladder(session, shape, rates)
    if served.run is None or served.watch is None:
        return Round(rates, [], None, None, served.seconds, served.error)
    return figures(session, rates, served.run, served.watch, served.seconds)


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
        index = steps.index(step) + ladder.WARMUP_STEPS
        span = step_window(ladder.by_step(run.records).get(index, []))
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
        span = step_window(by_step.get(i + ladder.WARMUP_STEPS, []))
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
