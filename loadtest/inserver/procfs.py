"""The few psutil calls ``usage`` and ``tree`` make, read from Linux's /proc: for a server without psutil.

A team's environment has only what its app needs, so the code we load into its server
must run on the standard library alone. ``tree`` and ``usage`` import psutil where it
is installed, else this module under the same name: ``Process`` (pid, parent,
cmdline, children, cpu_times, memory_info, memory_full_info, create_time) and the
exceptions. Linux only; a process that is gone raises ``NoSuchProcess``, one that
cannot be read ``AccessDenied``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Error(Exception):
    pass


class NoSuchProcess(Error):
    pass


class AccessDenied(Error):
    pass


class CpuTimes(NamedTuple):
    user: float
    system: float
    children_user: float
    children_system: float


class Memory(NamedTuple):
    rss: int
    pss: int | None = None


def read(pid: int, name: str) -> str:
    try:
        return (PROC / str(pid) / name).read_text()
    except (FileNotFoundError, ProcessLookupError):
        raise NoSuchProcess(pid) from None
    except PermissionError:
        raise AccessDenied(pid) from None


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): field 3 onwards."""
    text = read(pid, "stat")
    return text[text.rindex(")") + 2 :].split()


class Process:
    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        stat_fields(self.pid)  # NoSuchProcess now, as psutil

    def ppid(self) -> int:
        return int(stat_fields(self.pid)[1])

    def parent(self) -> Process | None:
        ppid = self.ppid()
        return Process(ppid) if ppid > 0 else None

    def cmdline(self) -> list[str]:
        return [part for part in read(self.pid, "cmdline").split("\0") if part]

    def children(self, recursive: bool = False) -> list[Process]:
        parents: dict[int, list[int]] = {}
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                try:
                    parents.setdefault(int(stat_fields(int(entry.name))[1]), []).append(int(entry.name))
                except Error:
                    continue
        found, todo = [], list(parents.get(self.pid, []))
        while todo:
            pid = todo.pop(0)
            found.append(pid)
            if recursive:
                todo.extend(parents.get(pid, []))
        out = []
        for pid in found:
            try:
                out.append(Process(pid))
            except Error:
                continue
        return out

    def cpu_times(self) -> CpuTimes:
        fields = stat_fields(self.pid)  # utime, stime, cutime, cstime are fields 14-17
        return CpuTimes(*(int(fields[i]) / TICKS for i in range(11, 15)))

    def memory_info(self) -> Memory:
        return Memory(int(read(self.pid, "statm").split()[1]) * PAGE)

    def memory_full_info(self) -> Memory:
        rss = self.memory_info().rss
        for line in read(self.pid, "smaps_rollup").splitlines():
            if line.startswith("Pss:"):
                return Memory(rss, int(line.split()[1]) * 1024)
        return Memory(rss)

    def create_time(self) -> float:
        started = int(stat_fields(self.pid)[19]) / TICKS  # field 22: ticks after boot
        for line in (PROC / "stat").read_text().splitlines():
            if line.startswith("btime"):
                return int(line.split()[1]) + started
        raise AccessDenied(self.pid)
