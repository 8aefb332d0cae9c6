"""The local backend of the target runner: the server as a process tree on this machine.

- The root process runs in its own session (``start_new_session``), so it and every
  process it forks are found by the session id, its pid, and none outlives ``stop``.
- The server listens on ``launch.host`` (``Launch.command``'s default): loopback
  unless the caller names an interface other machines reach it on.
- CPU affinity (``launch.cores``) is set in the child before it executes the server,
  so every process it forks or spawns inherits it.
- Environment: this process's, then ``launch.environment()``, with PYTHONPATH naming the
  working directory first (a bring-your-own module there imports), then the staged shim
  (``launch.shim``; the project root only for our own servers, ``python -m server``) or,
  without one, the project root.
- Usage is the process tree's (``cpuwatch.tree_reading``): CPU seconds including
  reaped children, memory as PSS (RSS where PSS is denied).

What this module does not know: which server it runs, or what is measured with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import psutil

from loadtest.inserver.tree import members
from loadtest.measure.cpuwatch import Reading, tree_reading
from loadtest.registry.paths import PROJECT_ROOT
from loadtest.run import processes
from loadtest.run.runner import Launch, TargetRunner


def local_env(launch: Launch) -> dict[str, str]:
    env = {**os.environ, **launch.environment()}
    paths = [str(launch.cwd or os.getcwd())]
    if launch.shim is not None:
        paths.append(str(launch.shim.directory))
    if launch.shim is None or launch.target.kind == "lab":
        paths.append(str(PROJECT_ROOT))
    paths.append(env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


class LocalRunner(TargetRunner):
    """A target as a local process in its own session, stopped by pid."""

    runtime = "local"

    def __init__(self, launch: Launch) -> None:
        super().__init__(launch)
        self.proc: subprocess.Popen | None = None
        self._root: psutil.Process | None = None

    def _start(self) -> None:
        self.proc, self._root = None, None
        with self.stdout_log.open("wb") as out, self.stderr_log.open("wb") as err:
            self.proc = subprocess.Popen(
                self.launch.command(self.port),
                cwd=self.launch.cwd or os.getcwd(),
                env=local_env(self.launch),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=processes.pinned_to(self.launch.cores),
            )
        with contextlib.suppress(psutil.Error):
            self._root = psutil.Process(self.proc.pid)

    @property
    def pid(self) -> int | None:
        """The root process's pid (also its session id); None before the first start."""
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL to the root if it still runs, then to every process left in its session."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for leftover in processes.session_members(self.proc.pid):
            with contextlib.suppress(psutil.Error):
                leftover.kill()

    def usage(self, memory: bool = False) -> Reading | None:
        return tree_reading(self._root, memory) if self._root is not None else None

    def processes(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            if self._root is not None and self._root.status() != psutil.STATUS_ZOMBIE:
                return members(self._root)
        return []
