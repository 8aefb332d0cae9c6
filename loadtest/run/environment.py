"""What a run directory needs to be repeated: env.json and an executable rerun.sh.

- git commit: ``git rev-parse HEAD`` (``-dirty`` when the tree has changes);
  where there is no git checkout (a container), ``LAB_GIT_COMMIT`` -- compose
  passes it: ``LAB_GIT_COMMIT=$(git rev-parse HEAD) docker compose --profile
  compare run --rm compare``; else ``"unknown: <why>"``.
- ``LAB_RESULTS_HOST_DIR``: the host path of ``./results`` when compare runs in a
  container with that directory mounted; printed paths name it instead of the
  container's path, so a reader can open them.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import psutil

from loadtest.inserver.usage import cgroup_cpu_limit
from loadtest.measure import verdicts
from loadtest.registry.paths import PROJECT_ROOT
from server.config import Config

DISTRIBUTIONS = (
    "wsgi-lab",
    "flask",
    "werkzeug",
    "gunicorn",
    "gevent",
    "waitress",
    "h11",
    "httptools",
    "locust",
    "psutil",
    "matplotlib",
)


def git_commit() -> str:
    why = "no git checkout and LAB_GIT_COMMIT is unset"
    try:
        sha = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if sha.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            return sha.stdout.strip() + ("-dirty" if dirty else "")
        why = f"git: {sha.stderr.strip().splitlines()[-1] if sha.stderr.strip() else 'failed'}"
    except (OSError, subprocess.SubprocessError) as exc:
        why = f"git not runnable ({exc.__class__.__name__})"
    return os.environ.get("LAB_GIT_COMMIT", "").strip() or f"unknown: {why}"


def versions() -> dict[str, str]:
    out = {}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def lab_parser() -> str:
    """The request parser our server's ``--parser auto`` runs with here (lab-single-h11 always runs h11)."""
    return Config().parser_in_use


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def settle(limit_s: float, every_s: float = 2.0, load=load_average) -> bool:
    """Wait, at most ``limit_s``, for the 1-minute load average to come within the cores; True if it did.

    Starting every target at once (a dozen interpreters importing Flask) lifts the load average
    for a minute; without the wait the first rows would be judged "machine busy" for our own start-up.
    """
    deadline = time.monotonic() + limit_s
    cores = os.cpu_count() or 1
    while (busy := verdicts.load_busy(load(), cores)) and time.monotonic() < deadline:
        time.sleep(every_s)
    if limit_s:
        state = "still busy after" if busy else "settled within"
        print(f"{state} {limit_s:g} s: load average {load() or 0:.2f} on {cores} cores", flush=True)
    return not busy


def drop_flags(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """``argv`` without each of ``flags`` and its value, given as ``--flag V`` or ``--flag=V``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in flags)):
            out.append(arg)
    return out


def rerun_command(argv: list[str], seed: int | None, module: str = "loadtest.compare") -> list[str]:
    """The command line again without --out (rerun.sh picks a new one), with the seed pinned if it has one."""
    if seed is None:
        return [sys.executable, "-m", module, *drop_flags(argv, ("--out",))]
    return [sys.executable, "-m", module, *drop_flags(argv, ("--out", "--seed")), "--seed", str(seed)]


def write_rerun(out: Path, argv: list[str], seed: int | None, module: str = "loadtest.compare") -> str:
    """An executable rerun.sh: the same run of ``module`` (same seed), into a new directory (or $1).

    It starts where this run was started, where the arguments' relative paths point.
    """
    command = shlex.join(rerun_command(argv, seed, module))
    same = "same arguments and seed" if seed is not None else "same arguments"
    script = (
        "#!/bin/sh\n"
        f"# Repeat this run of {module}: {same}, new output directory (or the one given).\n"
        "set -e\n"
        f"cd {shlex.quote(os.getcwd())}\n"
        f'exec {command} --out "${{1:-{out}-rerun-$(date -u +%Y%m%dT%H%M%SZ)}}"\n'
    )
    path = out / "rerun.sh"
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
    return command + " --out <new dir>"


def machine_record(started: str, finished: str, loads: tuple, argv: list[str]) -> dict:
    """What every env.json says of when, where and with what it ran (compare's and bench's)."""
    return {
        "started": started,
        "finished": finished,
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cgroup_cpu_limit": cgroup_cpu_limit(),
        "load_before": loads[0],
        "load_after": loads[1],
        "git_commit": git_commit(),
        "versions": versions(),
        "lab_parser": lab_parser(),
        "argv": argv,
    }


def environment(
    started: str, finished: str, plan: dict, argv: list[str], loads: tuple, locustfile: str
) -> dict:
    return {
        **machine_record(started, finished, loads, argv),
        "memory_bytes": psutil.virtual_memory().total,
        "seed": plan["seed"],
        "parameters": plan,
        "locustfile": locustfile,
    }


def shown(path: Path) -> str:
    """``path`` as the reader can open it: under LAB_RESULTS_HOST_DIR when compare runs in a container."""
    host = os.environ.get("LAB_RESULTS_HOST_DIR", "").strip()
    if not host:
        return str(path)
    try:
        return str(Path(host) / path.resolve().relative_to(Path.cwd().resolve() / "results"))
    except ValueError:
        return str(path)
