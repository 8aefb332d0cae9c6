"""Running locust headless against one URL, and reading what it wrote.

One run = one locust process (with ``--processes N``: a master and N forked
workers; identity records travel from the workers to the master through
locust's message API).  Its CSV/HTML/JSON outputs are kept as locust writes
them, one set per run: ``locust/<scenario>/<stem>_stats.csv`` and so on.  The
figures a comparison reports come from the identity JSONL (``rounds.py``);
locust's aggregated CSV row is kept as the fallback when no record came back.

The generator's CPU is sampled (``cpuwatch.Watch``) over the locust process tree.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.measure import evidence
from loadtest.measure.cpuwatch import Watch
from loadtest.measure.round_record import num
from loadtest.registry.paths import PROJECT_ROOT
from loadtest.registry.scenarios import SCENARIO_CLASSES
from loadtest.run.processes import pinned_to, tail

LOCUSTFILE = PROJECT_ROOT / "loadtest" / "generator" / "locustfile.py"
# locust gets this long beyond its run time to write its files and exit before it is killed
EXIT_GRACE_S = 60


@dataclass
class Settings:
    """What every run of one comparison shares."""

    sleep_s: float
    cpu_ms: float
    hello_path: str
    duration: int
    spawn_rate: float | None
    slow_clients: int = 0  # the slow scenario's SlowClient users, part of the run's --users


@dataclass
class LocustRun:
    exit_code: int | None
    log: Path
    log_tail: str
    records: list[dict]
    identity_file: Path
    stats: dict  # locust's "Aggregated" row of <stem>_stats.csv
    warned: bool  # locust printed its own CPU warning
    watch: Watch  # the locust process tree's CPU
    processes: int


def read_aggregated(stats_csv: Path) -> dict:
    try:
        with stats_csv.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == "Aggregated":
                    return row
    except OSError:
        pass
    return {}


def live_rps(history_csv: Path, span: int = 3) -> float | None:
    """Requests/s over the last few rows of locust's stats history (one row a second).

    Computed from the running total rather than locust's "Requests/s"
    column, which averages from the start and lags at the beginning.
    """
    try:
        with history_csv.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"]
    except OSError:
        return None
    points = []
    for r in rows[-(span + 1) :]:
        ts, total = num(r.get("Timestamp")), num(r.get("Total Request Count"))
        if ts is not None and total is not None:
            points.append((ts, total))
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def command(
    settings: Settings, scenario: str, users: int, url: str, prefix: Path, processes: int
) -> list[str]:
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
    if processes > 1:
        argv += ["--processes", str(processes)]
    return [
        *argv,
        "--users",
        str(users),
        "--spawn-rate",
        f"{settings.spawn_rate or users:g}",
        "--run-time",
        f"{settings.duration}s",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.locust.html",
        "--json-file",
        f"{prefix}.locust",  # locust appends .json
        "--sleep-s",
        f"{settings.sleep_s:g}",
        "--cpu-ms",
        f"{settings.cpu_ms:g}",
        "--hello-path",
        settings.hello_path,
        "--identity-file",
        f"{prefix}.identity.jsonl",
        "--target",
        "none",
        *(["--slow-clients", str(settings.slow_clients)] if settings.slow_clients else []),
        *SCENARIO_CLASSES[scenario].split(),
    ]


def run(
    settings: Settings,
    scenario: str,
    users: int,
    url: str,
    prefix: Path,
    processes: int,
    progress: str,
    t0: float,
) -> LocustRun:
    """One headless locust run of a scenario against ``url``; files under ``prefix``."""
    argv = command(settings, scenario, users, url, prefix, processes)
    return run_argv(argv, prefix, settings.duration, progress, t0, processes)


def run_argv(
    argv: list[str],
    prefix: Path,
    duration: int,
    progress: str,
    t0: float,
    processes: int = 1,
    every: float = 1.0,
    cores: Sequence[int] | None = None,
    env: Mapping[str, str] | None = None,
) -> LocustRun:
    """One headless locust run of ``argv`` (any locustfile writing ``--csv``/``--identity-file`` under
    ``prefix``); killed ``EXIT_GRACE_S`` after ``duration``; a progress line every ``every`` seconds.
    ``cores``: CPU affinity set before locust starts (None: wherever the scheduler puts it);
    ``env``: more environment for locust."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(f"{prefix}.locust.log")
    identity = Path(f"{prefix}.identity.jsonl")
    history = Path(f"{prefix}_stats_history.csv")
    base = {k: v for k, v in os.environ.items() if k not in ("LAB_HOSTS", "LOCUST_TARGET")}
    paths = os.pathsep.join(p for p in (str(PROJECT_ROOT), base.get("PYTHONPATH", "")) if p)
    full_env = {**base, "PYTHONPATH": paths, **(env or {})}
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=pinned_to(cores),
        )
        watch = Watch.tree(proc.pid).start()
        try:
            last_print = 0.0
            while proc.poll() is None:
                elapsed = time.monotonic() - started
                if elapsed > duration + EXIT_GRACE_S:
                    proc.kill()
                    break
                if elapsed - last_print >= every:
                    print_progress(history, duration, progress, t0)
                    last_print = elapsed
                time.sleep(0.2)
            proc.wait()
            print_progress(history, duration, progress, t0)
        except BaseException:
            proc.kill()  # interrupted (Ctrl-C): locust must not outlive its runner
            proc.wait()
            raise
        finally:
            watch.stop()
    stats = read_aggregated(Path(f"{prefix}_stats.csv"))
    return LocustRun(
        exit_code=proc.returncode,
        log=log_path,
        log_tail=tail(log_path) if not stats else "",
        records=evidence.load(identity),
        identity_file=identity,
        stats=stats,
        warned="CPU usage" in log_path.read_text(encoding="utf-8", errors="replace"),
        watch=watch,
        processes=processes,
    )


def load_started(history_csv: Path) -> float | None:
    """Unix time of locust's first stats row with users running."""
    try:
        with history_csv.open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if (num(r.get("User Count"), int) or 0) > 0:
                    return num(r.get("Timestamp"))
    except OSError:
        pass
    return None


def print_progress(history: Path, duration: int, progress: str, t0: float) -> None:
    """One progress line: which run, how far into its load, the live requests/s."""
    rps, began = live_rps(history), load_started(history)
    load = f"{min(time.time() - began, duration):3.0f}" if began else "  0"
    live = f"live {rps:.1f} req/s" if rps is not None else "starting locust"
    print(
        f"{progress}  load {load}/{duration} s  {live}  (elapsed {time.monotonic() - t0:.0f} s)", flush=True
    )
