"""The command line of ``make tune``: flags parsed and checked into ``settings.Settings``.

Every bad value is one line naming the problem, exit status 2, before anything
starts (``UsageError`` for checks argparse cannot make; ``--app`` -- any spec
gunicorn takes -- is imported, a factory called, in the team's interpreter,
directory and environment, or in their image, so that a broken app is a one-line
answer too: ``tune/project.py`` holds those flags and checks).

Defaults, stated once:

- ``--cpus``: ``TUNE_CPUS`` when set (the compose ``tune`` service passes it),
  else the CPU limit of the cgroup this process runs in (whole cores, rounded
  down, at least 1), else the cores this process may run on.
- ``--memory``: ``TUNE_MEMORY`` when set, else the memory limit of the cgroup
  (``memory.max``, or cgroup v1's ``memory.limit_in_bytes``), else the memory
  the machine has available now.
- ``--runtime``: ``local`` (each candidate a process tree pinned to ``--cpus``
  whole cores) or ``docker`` (each candidate in its own container from the
  project's image, or the team's ``--image``, under ``--cpus`` as a CFS quota -- fractional
  allowed -- and ``--memory`` as its memory limit; ``loadtest/run/container.py``).
- ``--app``: ``demo``, wsgi-lab's own demo app (``app:app`` is a team's module).
- ``--servers``: every registry target meant for deployment (``DEFAULT_SERVERS``),
  less those ``--venv`` (or ``--image``) lacks, each said with the line that adds it;
  Flask's development server and our one-at-a-time and fork-per-connection
  modes are demonstrations and join only when named.  Our own server models
  (``lab-*``) are measured as the teaching contrast but recommended only when
  ``--servers`` names them: a team deploys what it installs from the package index.
- the generator: one locust process; ``--generator-workers N`` runs locust's
  own distributed mode here (a master and N workers on the cores not given to
  the server); ``--expect-workers N`` waits for N workers started elsewhere,
  the master and the servers bound on ``--master-bind`` (default
  ``LAB_MASTER_BIND_ADDR``, else ``LAB_BIND_ADDR``, else loopback: the compose
  stack's exposure rule; any other address must name one interface).

What this module does not know: how anything is measured (every consumer takes the
``Settings`` it returns, never the argparse namespace).
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import psutil

from loadtest.inserver.usage import CGROUP_ROOT, cgroup_cpu_limit, cgroup_dirs, cgroup_paths
from loadtest.registry import records, targets
from loadtest.registry.exposure import BIND_ENV, DEFAULT_BIND, MASTER_BIND_ENV, is_loopback, specific_address
from loadtest.run.plan import UsageError
from loadtest.tune import project
from loadtest.tune.candidates import BASELINE_TARGET
from loadtest.tune.deploy import DEFAULT_NAMESPACE
from loadtest.tune.fleet import DEFAULT_UTILISATION
from loadtest.tune.ladder import STEP_S
from loadtest.tune.settings import DEFAULT_ERROR_RATE, Budget, Generator, MiB, Settings, Slo
from loadtest.tune.traffic import flags as traffic_flags
from server.oneline import OneLineParser

MIN_STEP_S, MAX_STEP_S = 1.0, 60.0
DEFAULT_MINUTES = 10.0
MIN_MINUTES, MAX_MINUTES = 0.5, 240.0
DEMO_PATH = "/sleep?s=0.05"
DEMONSTRATIONS = ("lab-single", "lab-forking", "flask-dev", "flask-dev-nothreads", "flask-dev-processes")
DEFAULT_SERVERS = tuple(name for name in targets.TARGETS if name not in DEMONSTRATIONS)
SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": MiB,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}
SLO_QUANTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
RUNTIMES = ("local", "docker")
MIN_QUOTA_CPUS = 0.01  # the engine's smallest CPU quota
# The budget from the environment when no flag gives it: a container runs the
# search with no limit of its own (the generator must not share the budget).
CPUS_ENV, MEMORY_ENV = "TUNE_CPUS", "TUNE_MEMORY"
OUR_SERVERS_KIND = "lab"  # the registry kind of our own server models: recommended only when named
MAX_GENERATOR_WORKERS = 64


def parse_size(text: str) -> float:
    """``1GiB``, ``800M``, ``512mb``, ``2g`` -> bytes (M and G are decimal, MiB and GiB binary)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: expected a size like 800MiB, 1GiB or 2G")
    value = float(match.group(1)) * SIZE_UNITS[unit]
    if value < MiB:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: at least 1 MiB")
    return value


def parse_slo(text: str) -> tuple[float, float]:
    """``p95=250ms`` (or ``p99=1s``) -> (95.0, 250.0)."""
    match = re.fullmatch(r"\s*(p50|p95|p99)\s*=\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"bad SLO {text!r}: expected p50=, p95= or p99= and a time in ms or s, like p95=250ms"
        )
    ms = float(match.group(2)) * (1000.0 if match.group(3) == "s" else 1.0)
    if ms <= 0:
        raise argparse.ArgumentTypeError(f"bad SLO {text!r}: the time must be above 0")
    return SLO_QUANTILES[match.group(1)], ms


def parse_path(text: str) -> tuple[str, float]:
    """``/a:3`` -> ("/a", 3.0); ``/a`` -> ("/a", 1.0).  The weight is a number after the last colon."""
    path, sep, weight = text.rpartition(":")
    if sep and re.fullmatch(r"\d+(\.\d+)?", weight):
        value = float(weight)
    else:
        path, value = text, 1.0
    if not path.startswith("/") or any(c in path for c in " ,\t\r\n"):
        raise argparse.ArgumentTypeError(
            f"bad path {text!r}: expected /some/url[:weight], no spaces or commas"
        )
    if value <= 0:
        raise argparse.ArgumentTypeError(f"bad path {text!r}: the weight must be above 0")
    return path, value


def locustfile_arg(text: str) -> Path:
    path = Path(text).resolve()
    if path.suffix != ".py" or not path.is_file():
        raise argparse.ArgumentTypeError(f"no locustfile {text!r}: expected an existing .py file")
    return path


def error_rate(text: str) -> float:
    """``0.1%`` or ``0.001`` -> 0.001."""
    try:
        value = float(text[:-1]) / 100.0 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad error rate {text!r}: expected a share like 0.1% or 0.001"
        ) from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"bad error rate {text!r}: must be 0 to under 100%")
    return value


def bounded(cast: type, low: float, high: float, flag: str, example: str) -> Callable[[str], float]:
    """An argparse type: ``cast(text)`` within ``low..high``, else a message naming the flag."""

    def parse(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {example}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{flag} must be {low:g} to {high:g}, got {text!r}")
        return value

    return parse


minutes_arg = bounded(float, MIN_MINUTES, MAX_MINUTES, "--minutes", "minutes like 8 or 2.5")
step_seconds = bounded(float, MIN_STEP_S, MAX_STEP_S, "--step-seconds", "seconds like 4")
target_rps_arg = bounded(float, 0.001, 1e9, "--target-rps", "a rate like 2000")
utilisation_arg = bounded(float, 0.05, 1.0, "--utilisation", "a share like 0.7")
max_replicas_arg = bounded(int, 1, 10_000, "--max-replicas", "a replica count like 10")


def namespace_arg(text: str) -> str:
    """A Kubernetes namespace: a DNS-1123 label (lower-case letters, digits, '-'; at most 63)."""
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(
            f"bad namespace {text!r}: lower-case letters, digits and '-', at most 63, like shop-prod"
        )
    return text


def cpus_arg(text: str) -> float:
    """``2`` -> 2 (an int: whole cores), ``1.5`` -> 1.5 (a quota: only the docker runtime takes it)."""
    most = len(os.sched_getaffinity(0))
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected cores like 2 or 1.5, got {text!r}") from None
    if not MIN_QUOTA_CPUS <= value <= most:
        raise argparse.ArgumentTypeError(
            f"--cpus must be above 0 and at most {most} (this machine's), got {text!r}"
        )
    return int(value) if value.is_integer() else value


def cgroup_memory_limit(root: Path = CGROUP_ROOT) -> float | None:
    """Bytes the cgroup may use: v2 ``memory.max`` ("max" = none), else v1 ``memory.limit_in_bytes``."""
    paths = cgroup_paths()
    candidates = [(d / "memory.max") for d in cgroup_dirs(root, paths.get("", "/"))]
    if "memory" in paths:
        candidates = [d / "memory.limit_in_bytes" for d in cgroup_dirs(root / "memory", paths["memory"])]
    for path in candidates:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        value = float(text)
        return value if value < 2**60 else None  # v1 writes a huge number for "no limit"
    return None


def flag_or_env(value: float | None, flag: str, var: str, parse: Callable[[str], float]) -> tuple:
    """(value, where it came from): the flag, else ``var`` when set and not empty, else (None, "")."""
    if value is not None:
        return value, flag
    text = os.environ.get(var, "").strip()
    if not text:
        return None, ""
    try:
        return parse(text), var
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{var}={text}: {exc}") from None


def default_budget(
    cpus: float | None, memory: float | None, cpus_from: str = "--cpus", memory_from: str = "--memory"
) -> Budget:
    limit = cgroup_cpu_limit()
    if cpus is not None:
        cpus_value, cpus_source = cpus, cpus_from
    elif limit is not None:
        cpus_value, cpus_source = max(1, math.floor(limit)), f"the cgroup CPU limit ({limit:g})"
    else:
        cpus_value, cpus_source = len(os.sched_getaffinity(0)), "the cores this machine gives us"
    mem_limit = cgroup_memory_limit()
    if memory is not None:
        mem_value, mem_source = memory, memory_from
    elif mem_limit is not None:
        mem_value, mem_source = mem_limit, "the cgroup memory limit"
    else:
        mem_value, mem_source = float(psutil.virtual_memory().available), "the memory available now"
    return Budget(cpus_value, mem_value, cpus_source, mem_source)


def budget_from(cpus: float | None, memory: float | None) -> Budget:
    """The budget from the flags, else ``TUNE_CPUS``/``TUNE_MEMORY``, else the defaults above."""
    cpus, cpus_from = flag_or_env(cpus, "--cpus", CPUS_ENV, cpus_arg)
    memory, memory_from = flag_or_env(memory, "--memory", MEMORY_ENV, parse_size)
    return default_budget(cpus, memory, cpus_from, memory_from)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m loadtest.tune",
        description="Measure your WSGI app and recommend server, worker class, workers and threads "
        "that meet a latency objective within a CPU and memory budget.",
    )
    for add in (add_workload, add_objectives, add_budget, add_runtime, add_generator, add_run, add_fleet):
        add(p)
    traffic_flags.add_arguments(p)  # the workload from a recording, expected answers, --max-in-flight
    return p


def add_workload(p: argparse.ArgumentParser) -> None:
    """What is served and what it is asked: the app (and its project: directory, variables, virtualenv),
    its paths or a locustfile."""
    project.add_arguments(p)
    p.add_argument(
        "--path",
        action="append",
        type=parse_path,
        default=[],
        help=f"a request path, repeatable, optional weight: --path /a:3 --path /b:1 (default {DEMO_PATH})",
    )
    p.add_argument(
        "--locustfile",
        type=locustfile_arg,
        default=None,
        help="the workload as your own locust user classes (their tasks, arriving at the target rates)",
    )


def add_objectives(p: argparse.ArgumentParser) -> None:
    """The latency objectives and the error budget."""
    p.add_argument(
        "--slo",
        action="append",
        type=parse_slo,
        default=[],
        help="latency objective, repeatable: p50=, p95=, p99= with ms or s (default p95=250ms)",
    )
    p.add_argument("--max-error-rate", type=error_rate, default=DEFAULT_ERROR_RATE, help="default 0.1%%")


def add_budget(p: argparse.ArgumentParser) -> None:
    """The CPU and memory the server may use."""
    p.add_argument(
        "--cpus",
        type=cpus_arg,
        default=None,
        help=f"cores for the server (default: {CPUS_ENV}, cgroup, machine); fractional with --runtime docker",
    )
    p.add_argument(
        "--memory",
        type=parse_size,
        default=None,
        help=f"memory budget, e.g. 1GiB (default: {MEMORY_ENV}, cgroup, available)",
    )


def add_runtime(p: argparse.ArgumentParser) -> None:
    """Where the candidates run and which servers they are."""
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="local",
        help="where candidates run: local processes pinned to cores (default), or docker: each in its own "
        "container with --cpus as a CPU quota and --memory as its memory limit",
    )
    p.add_argument(
        "--image",
        default=None,
        help="--runtime docker: your image, built FROM wsgi-lab:latest with your app (default: the project's "
        "image, built from its Dockerfile when needed; nothing is pulled)",
    )
    p.add_argument(
        "--servers",
        default=None,
        help="registry targets to consider, comma-separated (default: the deployable ones; our own lab-* "
        "models are measured as the contrast and recommended only when named here)",
    )


def add_generator(p: argparse.ArgumentParser) -> None:
    """The load generator: one locust process, workers here, or workers elsewhere."""
    p.add_argument(
        "--generator-workers",
        type=bounded(int, 1, MAX_GENERATOR_WORKERS, "--generator-workers", "a worker count like 2"),
        default=0,
        help="run locust distributed: a master and N worker processes on the cores not given to the server",
    )
    p.add_argument(
        "--expect-workers",
        type=bounded(int, 1, MAX_GENERATOR_WORKERS, "--expect-workers", "a worker count like 4"),
        default=0,
        help="wait for N locust workers started elsewhere (locust -f loadtest/generator/arrivals.py "
        "--worker --master-host ADDR); the master and the servers bind --master-bind",
    )
    p.add_argument(
        "--master-bind",
        default=None,
        help=f"address for --expect-workers (default {MASTER_BIND_ENV}, {BIND_ENV}, {DEFAULT_BIND})",
    )


def add_run(p: argparse.ArgumentParser) -> None:
    """The run itself: its time budget, where it writes, what it is checked against, its pace and seed."""
    p.add_argument(
        "--minutes", type=minutes_arg, default=DEFAULT_MINUTES, help="time budget for the whole search"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="results directory (default results/tune-<timestamp>)"
    )
    p.add_argument(
        "--against",
        type=Path,
        default=None,
        help="an earlier run directory: say whether this run recommends the same shape (rerun.sh passes it)",
    )
    p.add_argument(
        "--step-seconds",
        type=step_seconds,
        default=STEP_S,
        help=f"seconds each arrival-rate step lasts (default {STEP_S:g}; shorter is quicker and noisier)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the arrival times (default: random, recorded)"
    )


def add_fleet(p: argparse.ArgumentParser) -> None:
    """A fleet of the recommended shape: replicas for a target rate, the autoscaler, the namespace."""
    p.add_argument(
        "--target-rps",
        type=target_rps_arg,
        default=None,
        help="plan replicas of the recommended shape for this rate (req/s) in the headline and deploy files",
    )
    p.add_argument(
        "--utilisation",
        type=utilisation_arg,
        default=None,
        help=f"share of a replica's measured rate it is planned at (default {DEFAULT_UTILISATION:g})",
    )
    p.add_argument(
        "--max-replicas",
        type=max_replicas_arg,
        default=None,
        help="the autoscaler's ceiling (default: twice the planned replicas)",
    )
    p.add_argument(
        "--namespace",
        type=namespace_arg,
        default=DEFAULT_NAMESPACE,
        help=f"the Kubernetes namespace of deploy/kubernetes.yaml (default {DEFAULT_NAMESPACE})",
    )


def servers_arg(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in targets.TARGETS]
    if unknown:
        raise UsageError(f"--servers: unknown server {unknown[0]!r}; known: {', '.join(targets.TARGETS)}")
    if not names:
        raise UsageError("--servers: name at least one server")
    return list(dict.fromkeys(names))


def check_runtime(runtime: str, image: str | None, budget: Budget) -> None:
    """The flags the runtime cannot honour, and for docker an engine that answers (and ``--image`` on it)."""
    if runtime == "local":
        if image is not None:
            raise UsageError("--image needs --runtime docker (the local runtime runs no image)")
        if not float(budget.cpus).is_integer():
            raise UsageError(
                f"--cpus {budget.cpus:g}: the local runtime pins whole cores; "
                "a fractional CPU quota needs --runtime docker"
            )
        return
    from loadtest.run import engine  # the docker SDK only when it is asked for
    from loadtest.run import image as images

    try:
        client = engine.connect()
        if image is not None:
            images.user_image(client, image)
    except engine.EngineError as exc:
        raise UsageError(f"--runtime docker: {exc}") from None


def recommendable(named: str | None, servers: list[str]) -> tuple[str, ...]:
    """What the verdict may recommend: every server named, else all but our own models; and the baseline."""
    chosen = (
        servers if named is not None else [n for n in servers if targets.TARGETS[n].kind != OUR_SERVERS_KIND]
    )
    return tuple(dict.fromkeys([*chosen, BASELINE_TARGET]))


def generator_from(workers: int, expect: int, bind: str | None, budget: Budget) -> Generator:
    """The generator's settings, checked against the cores left beside the server's."""
    if workers and expect:
        raise UsageError("give --generator-workers (workers here) or --expect-workers (elsewhere), not both")
    if bind is not None and not expect:
        raise UsageError("--master-bind is for --expect-workers (workers on other machines)")
    if workers:
        free = len(set(os.sched_getaffinity(0)) - set(budget.cores()))
        if workers > free:
            raise UsageError(
                f"--generator-workers {workers}: {free} core(s) left beside the server's {budget.cpus} "
                f"(--cpus); give at most {free}" + (" or lower --cpus" if not free else "")
            )
    address = (bind or os.environ.get(MASTER_BIND_ENV, "") or os.environ.get(BIND_ENV, "")).strip()
    address = address or DEFAULT_BIND
    if expect and not (is_loopback(address) or specific_address(address)):
        raise UsageError(
            f"--master-bind {address}: name one interface (like 10.0.0.5) or loopback, not all of them"
        )
    return Generator(workers=workers, expect=expect, bind=address if expect else DEFAULT_BIND)


def parse(argv: list[str]) -> Settings:
    """The checked arguments; raises UsageError (argparse exits 2 itself for its own checks)."""
    ns = build_parser().parse_args(argv)
    if ns.against is not None and not (ns.against / records.RECOMMENDATION).is_file():
        raise UsageError(f"--against {ns.against}: no {records.RECOMMENDATION} there")
    if ns.locustfile and ns.path:
        raise UsageError("give the workload as --path or as --locustfile, not both")
    servers = servers_arg(ns.servers if ns.servers is not None else ",".join(DEFAULT_SERVERS))
    budget = budget_from(ns.cpus, ns.memory)
    generator = generator_from(ns.generator_workers, ns.expect_workers, ns.master_bind, budget)
    given = traffic_flags.resolve(ns, ns.path or [(DEMO_PATH, 1.0)])
    try:
        team, servers = project.team_from(ns, servers, lambda line: print(f"[tune] {line}", flush=True))
        slo = Slo(dict(ns.slo or [(95.0, 250.0)]), ns.max_error_rate)
        check_runtime(ns.runtime, ns.image, budget)
        if ns.runtime == "docker":
            team = project.check_in_image(team, ns.image)
    except project.ProjectError as exc:
        raise UsageError(str(exc)) from None
    recorded = given.traffic is not None and given.traffic.busiest_minute_rps is not None
    if ns.target_rps is None and not recorded and (ns.utilisation is not None or ns.max_replicas is not None):
        flag = "--utilisation" if ns.utilisation is not None else "--max-replicas"
        raise UsageError(
            f"{flag} plans replicas: give the rate to plan for with --target-rps (or --access-log, --har)"
        )
    return Settings(
        app=team.app,
        paths=given.workload.weights() if given.workload else [],
        locustfile=ns.locustfile,
        slo=slo,
        budget=budget,
        servers=servers,
        minutes=ns.minutes,
        out=ns.out,
        seed=ns.seed if ns.seed is not None else int.from_bytes(os.urandom(4), "big") % 2**31,
        step_s=ns.step_seconds,
        against=ns.against,
        argv=list(argv),
        runtime=ns.runtime,
        image=ns.image,
        recommendable=recommendable(ns.servers, servers),
        generator=generator,
        target_rps=ns.target_rps,
        utilisation=ns.utilisation if ns.utilisation is not None else DEFAULT_UTILISATION,
        max_replicas=ns.max_replicas,
        namespace=ns.namespace,
        workload=given.workload,
        traffic=given.traffic,
        max_in_flight=given.max_in_flight,
        chdir=team.chdir,
        env=team.env,
        env_file=team.env_file,
        venv=team.venv,
    )
