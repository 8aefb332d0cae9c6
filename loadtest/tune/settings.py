"""What one tune run is asked to do: the settings the command line (``tune/cli.py``) produces.

Every consumer (the calibration, the trials, the search, the verdict, the record)
takes ``Settings`` or one of its parts (``Budget``, ``Slo``, ``Generator``), never
the parsed command line: the flags, their defaults and their checks are the CLI's.

What this module does not know: the command line, or how anything is measured.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.registry.appspec import AppSpec
from loadtest.registry.exposure import DEFAULT_BIND
from loadtest.registry.workload import Traffic, Workload
from loadtest.run.team import Team
from loadtest.tune.deploy import DEFAULT_NAMESPACE
from loadtest.tune.fleet import DEFAULT_UTILISATION
from loadtest.tune.ladder import STEP_S

MiB = 1024 * 1024
DEFAULT_ERROR_RATE = 0.001  # 0.1 %


@dataclass(frozen=True)
class Generator:
    """How the load is generated: one locust process, N local workers, or N workers from elsewhere."""

    workers: int = 0  # locust worker processes started here (0: one plain locust process)
    expect: int = 0  # locust workers started elsewhere that the master waits for
    bind: str = DEFAULT_BIND  # the master's and the servers' address when workers come from elsewhere

    @property
    def distributed(self) -> int:
        """The number of locust workers (0: not distributed)."""
        return self.workers or self.expect


@dataclass(frozen=True)
class Slo:
    """Latency objectives: percentile (50/95/99) -> milliseconds, and the error budget."""

    limits: dict[float, float]
    max_error_rate: float = DEFAULT_ERROR_RATE

    def text(self) -> str:
        return ", ".join(f"p{q:g} <= {ms:g} ms" for q, ms in sorted(self.limits.items()))

    def generator_arg(self) -> str:
        return ",".join(f"{q:g}={ms:g}" for q, ms in sorted(self.limits.items()))


@dataclass(frozen=True)
class Budget:
    """The CPU and memory the server under test may use, and where each figure came from."""

    cpus: float  # a whole number (an int) unless the runtime is docker, whose quota may be 1.5
    memory_bytes: float
    cpus_source: str
    memory_source: str

    @property
    def memory_mb(self) -> float:
        return self.memory_bytes / MiB

    def cores(self) -> list[int]:
        """The cores the server under test is pinned to: the first ``cpus`` this process may use."""
        return sorted(os.sched_getaffinity(0))[: math.ceil(self.cpus)]


@dataclass(frozen=True)
class Settings:
    """One run's checked settings (``cli.parse`` makes them)."""

    app: AppSpec  # --app, parsed (a spec's text is parsed here too); str(app) is the spec as given
    paths: list[tuple[str, float]]
    locustfile: Path | None
    slo: Slo
    budget: Budget
    servers: list[str]
    minutes: float
    out: Path | None
    seed: int
    step_s: float = STEP_S
    against: Path | None = None
    argv: list[str] = field(default_factory=list)
    runtime: str = "local"  # cli.RUNTIMES: where each candidate runs
    image: str | None = None  # --runtime docker: the user's image (None: the project's, built when needed)
    recommendable: tuple[str, ...] = ()  # servers the verdict may recommend (empty: every one measured)
    generator: Generator = field(default_factory=Generator)
    target_rps: float | None = None  # plan replicas for this rate (fleet.py); None: no plan
    utilisation: float = DEFAULT_UTILISATION  # a replica is planned at this share of its measured rate
    max_replicas: int | None = None  # the autoscaler's ceiling (None: fleet.MAX_REPLICAS_FACTOR x the plan)
    namespace: str = DEFAULT_NAMESPACE  # deploy/kubernetes.yaml's
    workload: Workload | None = None  # the requests and their expected answers (None: a locustfile's)
    traffic: Traffic | None = None  # the recording the requests came from (--access-log, --har)
    max_in_flight: int | None = None  # the most requests the deployment may hold at once (--max-in-flight)
    # The team's project (loadtest/run/team.py): the record and the deploy files take the variables'
    # names and the file's path, never a value.
    chdir: Path | None = None  # --chdir: where the app imports from (None: the current directory)
    env: Mapping[str, str] = field(default_factory=dict)  # --env-file's variables, --env's over them
    env_file: Path | None = None  # --env-file
    venv: Path | None = None  # --venv: the interpreter and packages every candidate runs with
    image_added: tuple[str, ...] = ()  # what --runtime docker added to --image (runtime.runners says)

    def __post_init__(self) -> None:
        if isinstance(self.app, str):
            object.__setattr__(self, "app", AppSpec.parse(self.app))

    @property
    def team(self) -> Team:
        return Team(self.app, self.chdir, self.env, self.env_file, self.venv)

    def workload_text(self) -> str:
        if self.locustfile is not None:
            return f"the user classes of {self.locustfile}"
        if self.workload is not None:
            expect = ", ".join(map(str, self.workload.expect))
            return self.workload.text() + (f"; expected answers {expect}" if expect else "")
        return ", ".join(f"{p} (weight {w:g})" for p, w in self.paths)
