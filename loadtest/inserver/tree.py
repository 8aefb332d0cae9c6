"""One walk of a process tree, and one thread that samples it: every measurement of a server's tree uses them.

Readers: CPU and memory at ``GET /_lab/usage`` (``usage``, inside the server), the runner's CPU
sampling (``loadtest.measure.cpuwatch``), what slow clients hold (``loadtest.run.slow``) and the
soak's RSS and fds (``loadtest.soak``).

Policy, stated once:

- The tree is the root and every descendant psutil lists at that moment; a root that is gone is
  an empty tree, not an error.
- A forking server's children come and go between listing and reading: a process that exits (or
  denies access) in between is skipped, never an error.
- A ``Sampler`` takes its first sample at ``start`` and then one every ``interval`` seconds in a
  daemon thread, until ``stop``.

Runs inside the server under test as well, so stdlib only (psutil where installed, else
``procfs``).  Knows nothing of what is
read from each process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

try:
    import psutil
except ImportError:  # a team's environment without psutil: the same calls, read from /proc
    from . import procfs as psutil  # type: ignore[no-redef]

T = TypeVar("T")


def members(root: psutil.Process | int) -> list[psutil.Process]:
    """The root (a process or a pid) and all its descendants; [] when the root is gone."""
    try:
        proc = root if isinstance(root, psutil.Process) else psutil.Process(root)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def read_each(
    procs: list[psutil.Process], read: Callable[[psutil.Process], T]
) -> list[tuple[psutil.Process, T]]:
    """``read`` of every process, skipping those that exited or refused since they were listed."""
    out = []
    for proc in procs:
        try:
            out.append((proc, read(proc)))
        except psutil.Error:
            continue
    return out


class Sampler(Generic[T]):
    """Calls ``take`` at ``start``, then every ``interval`` s in a daemon thread; keeps what is not None."""

    def __init__(self, take: Callable[[], T | None], interval: float, name: str) -> None:
        self.take, self.interval = take, interval
        self.samples: list[T] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Sampler[T]:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.take()
            if sample is not None:
                self.samples.append(sample)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
