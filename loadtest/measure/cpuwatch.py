"""CPU seconds (and memory) used by a server or a generator, sampled while the load runs.

A forking server's children come and go; psutil sees live children, and the
parent's ``children_user``/``children_system`` hold the CPU of the children
it has already reaped.  Their sum is the tree's CPU so far.  Samples are
timestamped so the caller can take the rate over exactly the load window
(locust's own start-up burns a second of CPU that is not load).

Each sample also holds the whole machine's busy CPU seconds (every process,
ours or not), so a run can say how much of the machine was in use.

A ``Watch`` samples whatever answers ``read(memory) -> Reading``: a local process
tree (``tree_reading``, ``Watch.tree(pid)``) or a target runner of any backend
(``TargetRunner.usage``, ``loadtest/run/runner.py``), so the figures do not know
how the target runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psutil

from loadtest.inserver import usage
from loadtest.inserver.tree import Sampler, members, read_each


def cpu_by_process(root: psutil.Process) -> dict[int, tuple[float, float]]:
    """pid -> (own CPU seconds, CPU seconds of its already-reaped children) for the whole tree."""
    times = read_each(members(root), psutil.Process.cpu_times)
    return {proc.pid: (t.user + t.system, t.children_user + t.children_system) for proc, t in times}


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on anything but idling, since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


@dataclass(frozen=True)
class Reading:
    """What a target (or a generator) has used so far, read at one moment, whatever runs it.

    ``cpu_s`` is cumulative, so a rate is the difference of two readings over their time.
    """

    cpu_s: float  # CPU seconds used since it started, by everything it runs (reaped children included)
    memory_bytes: float | None = None  # its memory now, when asked for and measurable
    memory_kind: str = ""  # "pss" or "rss" (a local process tree), "cgroup" (a container's charge)
    per_process: Mapping[int, float] = field(default_factory=dict)  # pid -> own CPU s, where pids are seen
    # Other cumulative counters a backend reads (a container's throttled periods and time, say);
    # empty for a local process tree.
    counters: Mapping[str, float] = field(default_factory=dict)
    # When the figures were taken (Unix time), for a backend whose readings arrive late (a container
    # engine's stats, once a second); None: now.
    at: float | None = None


def tree_reading(root: psutil.Process, memory: bool = False) -> Reading | None:
    """A local process tree's reading; None once its root has exited."""
    try:
        if not root.is_running():
            return None
    except psutil.Error:
        return None
    per_process = cpu_by_process(root)
    total = sum(own + reaped for own, reaped in per_process.values())
    used, kind = usage.memory(root) if memory else (None, "")
    return Reading(total, used, kind, {pid: own for pid, (own, _) in per_process.items()})


def pid_reader(pid: int) -> Callable[[bool], Reading | None]:
    """``read(memory)`` of the tree under ``pid`` (a reader that reads nothing if it is already gone)."""
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return lambda _memory: None
    return lambda memory: tree_reading(root, memory)


@dataclass
class Watch:
    """Samples ``read`` every ``interval`` seconds (``tree.Sampler``'s thread).

    ``read(memory)`` returns a ``Reading`` (memory only when asked), or None once the
    target is gone.
    """

    read: Callable[[bool], Reading | None]
    interval: float = 0.25
    samples: list[tuple[float, float, Mapping[int, float]]] = field(default_factory=list)  # t, CPU s, pids
    machine: list[tuple[float, float]] = field(default_factory=list)
    memory_every: int = 0  # also sample memory every N-th sample (0: never; PSS is not free)
    memory: list[tuple[float, float, str]] = field(default_factory=list)
    counters: list[tuple[float, Mapping[str, float]]] = field(default_factory=list)  # a backend's own

    def __post_init__(self) -> None:
        self._sampler = Sampler(self.sample, self.interval, name="cpuwatch")

    @classmethod
    def tree(cls, pid: int, interval: float = 0.25, memory_every: int = 0) -> Watch:
        """A watch of the local process tree under ``pid`` (locust's, say)."""
        return cls(pid_reader(pid), interval=interval, memory_every=memory_every)

    def start(self) -> Watch:
        self._sampler.start()
        return self

    def sample(self) -> None:
        """One sample into ``samples``, ``machine`` and (every ``memory_every``-th) ``memory``."""
        with_memory = bool(self.memory_every) and len(self.samples) % self.memory_every == 0
        reading = self.read(with_memory)
        if reading is None:
            return
        now = reading.at or time.time()
        if self.samples and now <= self.samples[-1][0]:
            return  # a backend's reading already taken
        self.samples.append((now, reading.cpu_s, reading.per_process))
        self.machine.append((time.time(), machine_busy_seconds()))
        if reading.memory_bytes is not None:
            self.memory.append((now, reading.memory_bytes, reading.memory_kind))
        if reading.counters:
            self.counters.append((now, reading.counters))

    def stop(self) -> None:
        self._sampler.stop()

    def counted(self, start: float, end: float) -> dict[str, float]:
        """How much each of the backend's counters grew between ``start`` and ``end`` ({} if unread)."""
        inside = [c for c in self.counters if start <= c[0] <= end]
        if len(inside) < 2:
            return {}
        first, last = inside[0][1], inside[-1][1]
        return {name: max(last[name] - first[name], 0) for name in last if name in first}

    def _window(self, start: float, end: float) -> list[tuple[float, float, Mapping[int, float]]]:
        inside = [s for s in self.samples if start <= s[0] <= end]
        return inside if len(inside) >= 2 else []

    def cores(self, start: float, end: float) -> float | None:
        """Average cores the whole tree used between ``start`` and ``end`` (1.0 = one core busy)."""
        inside = self._window(start, end)
        if not inside:
            return None
        (t0, c0, _), (t1, c1, _) = inside[0], inside[-1]
        return max(c1 - c0, 0.0) / (t1 - t0) if t1 > t0 else None

    def busiest(self, start: float, end: float) -> float | None:
        """Highest average share of one core used by any single process of the tree."""
        inside = self._window(start, end)
        if not inside:
            return None
        (t0, _, first), (t1, _, last) = inside[0], inside[-1]
        if t1 <= t0:
            return None
        shares = [(last[pid] - first[pid]) / (t1 - t0) for pid in last if pid in first]
        return max(shares, default=None)

    def machine_share(self, start: float, end: float) -> float | None:
        """Share of all cores busy between ``start`` and ``end``, whatever used them (1.0 = every core)."""
        inside = [s for s in self.machine if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, b0), (t1, b1) = inside[0], inside[-1]
        return max(b1 - b0, 0.0) / (t1 - t0) / (os.cpu_count() or 1)

    def peak_memory(self, start: float, end: float) -> tuple[float | None, str]:
        """Largest memory sample of the tree between ``start`` and ``end``: (bytes, "pss" or "rss")."""
        inside = [m for m in self.memory if start <= m[0] <= end]
        if not inside:
            return None, ""
        best = max(inside, key=lambda m: m[1])
        return best[1], best[2]
