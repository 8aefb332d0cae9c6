"""The Docker engine, for the container backend: connect, read a container's usage and limits, clean up.

Policy, stated once:

- Every container the project starts carries ``LABEL`` (``wsgi-lab.tune=1``) and the
  run's own ``RUN_LABEL``, so ``remove_labelled`` finds and removes them at the end of a
  run, on Ctrl-C, or after a run that died.
- Usage comes from the Engine API's stats stream (``StatsFeed``: the engine samples
  once a second), which covers cgroup v1 and v2 alike: CPU seconds are
  ``cpu_stats.cpu_usage.total_usage``, memory is ``memory_stats.usage`` minus the
  page cache (v1 ``cache``, v2 ``inactive_file``), throttling is
  ``cpu_stats.throttling_data``; each reading carries the engine's time (``read``).
- The limits are read back from inside the container (``read_limits``: cgroup v2's
  ``cpu.max``/``memory.max``, else v1's ``cfs_quota_us``/``cfs_period_us``/
  ``limit_in_bytes``): what the kernel enforces, not what was asked for.
- OOM kills are the engine's ``oom`` events for the container. ``State.OOMKilled``
  only says whether its main process died of it: a worker killed and replaced by
  its arbiter leaves the container running and the flag false.

What this module does not know: what runs in a container, or what a target is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

LABEL = "wsgi-lab.tune"
RUN_LABEL = "wsgi-lab.run"
ENGINE_TIMEOUT_S = 30

# Read in the container with ``python -S`` (no site-packages: cheap, and any image built on ours has it).
LIMITS_SCRIPT = """
import json, pathlib
root = pathlib.Path("/sys/fs/cgroup")
def read(*names):
    for name in names:
        try:
            return (root / name).read_text().split()
        except OSError:
            pass
    return None
v2_cpu, v2_mem = read("cpu.max"), read("memory.max")
if v2_cpu is not None:
    quota, period = v2_cpu
    out = {"cgroup": 2, "cpu_quota_us": None if quota == "max" else int(quota), "cpu_period_us": int(period),
           "memory_limit_bytes": None if not v2_mem or v2_mem[0] == "max" else int(v2_mem[0])}
else:
    quota, period = read("cpu/cpu.cfs_quota_us", "cpu,cpuacct/cpu.cfs_quota_us"), read(
        "cpu/cpu.cfs_period_us", "cpu,cpuacct/cpu.cfs_period_us")
    mem = read("memory/memory.limit_in_bytes")
    out = {"cgroup": 1, "cpu_quota_us": int(quota[0]) if quota and int(quota[0]) > 0 else None,
           "cpu_period_us": int(period[0]) if period else None,
           "memory_limit_bytes": int(mem[0]) if mem and int(mem[0]) < 2**60 else None}
print(json.dumps(out))
"""


class EngineError(Exception):
    """No engine answers, or it refused what was asked: one line for the user."""


def connect() -> docker.DockerClient:
    """A client of the engine ``DOCKER_HOST`` names (default: the local socket); EngineError if none."""
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineError(f"no Docker engine answers ({first_line(exc)})") from None
    return client


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Limits:
    """What the kernel enforces on a container, read from its cgroup."""

    cgroup: int  # 1 or 2
    cpu_quota_us: int | None  # None: no quota
    cpu_period_us: int | None
    memory_limit_bytes: int | None  # None: no limit

    @property
    def cpus(self) -> float | None:
        if self.cpu_quota_us is None or not self.cpu_period_us:
            return None
        return self.cpu_quota_us / self.cpu_period_us

    def text(self) -> str:
        cpu = f"{self.cpu_quota_us}/{self.cpu_period_us} us" if self.cpu_quota_us else "no CPU quota"
        mem = f"{self.memory_limit_bytes / 2**20:.0f} MiB" if self.memory_limit_bytes else "no memory limit"
        return f"{cpu}, {mem} (cgroup v{self.cgroup})"


def read_limits(container: Container) -> Limits | None:
    """The container's CPU quota and memory limit as its cgroup files say; None if they cannot be read."""
    try:
        done = container.exec_run(["python", "-S", "-c", LIMITS_SCRIPT])
        if done.exit_code != 0:
            return None
        return Limits(**json.loads(done.output.decode().strip().splitlines()[-1]))
    except (docker.errors.DockerException, ValueError, TypeError, IndexError):
        return None


@dataclass(frozen=True)
class Usage:
    """One reading of the engine's stats for a container."""

    cpu_s: float
    memory_bytes: float | None
    periods: int
    throttled_periods: int
    throttled_s: float

    def counters(self) -> dict[str, float]:
        return {
            "periods": self.periods,
            "throttled_periods": self.throttled_periods,
            "throttled_s": self.throttled_s,
        }


def usage_from_stats(stats: Mapping[str, Any]) -> Usage | None:
    """The Engine API's stats document -> Usage; None when it holds no CPU figure (the container stopped)."""
    cpu = stats.get("cpu_stats") or {}
    total = (cpu.get("cpu_usage") or {}).get("total_usage")
    if not total:
        return None
    mem = stats.get("memory_stats") or {}
    detail = mem.get("stats") or {}
    cache = detail.get("cache", detail.get("inactive_file", 0))
    used = mem.get("usage")
    throttling = cpu.get("throttling_data") or {}
    return Usage(
        cpu_s=total / 1e9,
        memory_bytes=max(used - cache, 0) if used is not None else None,
        periods=int(throttling.get("periods", 0)),
        throttled_periods=int(throttling.get("throttled_periods", 0)),
        throttled_s=throttling.get("throttled_time", 0) / 1e9,
    )


def read_time(stats: Mapping[str, Any]) -> float | None:
    """The stats document's ``read`` time (RFC 3339, nanoseconds) as Unix time; None if absent or zero."""
    text = str(stats.get("read") or "")
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not match or text.startswith("0001-"):
        return None
    fraction = (match.group(2) or ".0")[:7]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return dt.datetime.fromisoformat(match.group(1) + fraction + zone).timestamp()


class StatsFeed:
    """The engine's stats stream of one container, followed in a daemon thread: the latest reading at once.

    The engine samples a container once a second, and a one-shot request waits
    for the next sample; a sampler that must not wait reads ``latest`` instead.
    The stream, and the thread, end when the container is removed.
    """

    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        self.latest: tuple[float, Usage] | None = None  # (Unix time of the reading, the reading)
        self._stream = client.api.stats(container_id, stream=True, decode=True)
        self._thread = threading.Thread(target=self._follow, name=f"stats-{container_id[:12]}", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(
            docker.errors.DockerException, requests.RequestException, OSError, ValueError
        ):
            for stats in self._stream:
                used, at = usage_from_stats(stats), read_time(stats)
                if used is not None and at is not None:
                    self.latest = (at, used)


def oom_kills(client: docker.DockerClient, container_id: str, since: dt.datetime) -> int:
    """How many times the OOM killer struck in the container since ``since`` (the engine's ``oom`` events)."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    try:
        events = client.events(
            since=since, until=until, filters={"container": container_id, "event": "oom"}, decode=True
        )
        return sum(1 for _ in events)
    except docker.errors.DockerException:
        return 0


def remove_labelled(client: docker.DockerClient, run_id: str | None = None) -> int:
    """Remove (force) every container with ``LABEL``, or only those of run ``run_id``; how many."""
    filters = [f"{LABEL}=1"] + ([f"{RUN_LABEL}={run_id}"] if run_id else [])
    removed = 0
    for container in client.containers.list(all=True, filters={"label": filters}):
        try:
            container.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            continue
    return removed
