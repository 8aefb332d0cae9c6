"""Running one target under test: what to launch (``Launch``) and the interface every backend offers.

compare, bench, soak, lifecycle and tune start servers only through a ``TargetRunner``
and never ask which backend they hold (as gunicorn's arbiter never asks which worker
class it runs). A backend is one class in its own module: ``LocalRunner``
(``local.py``: a process in its own session on this machine) or a container with a CPU
quota and a memory limit. A new backend is a new subclass, not a flag.

Policy, stated once for every backend:

- A target that fails (cannot start, never answers HTTP, dies) is reported in
  ``problem`` with the tail of its stderr a call away; no method raises for it.
- Ready means the first HTTP answer on ``url + /health``, any status: a bring-your-own
  app without ``/health`` answers 404 and is serving all the same (a note says so).
- Stop is graceful first: SIGTERM (or the backend's equivalent), then a kill after
  the grace period; nothing the target started outlives ``stop``.

What this module does not know: how a process or a container is started.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import psutil

from loadtest.measure.cpuwatch import Reading
from loadtest.registry import targets
from loadtest.run.processes import STDERR_TAIL_LINES, free_port, tail, wait_http
from loadtest.run.shim import Shim

# Seconds a started server gets to answer its first request before it counts as failed to start
# (compare's --startup-timeout default; bench, soak, lifecycle and tune wait as long).
START_TIMEOUT_S = 30.0

STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class Launch:
    """What to run: one server serving one app, whichever backend runs it.

    ``target`` builds the command line for a port (``Target.command``); a backend
    chooses the interpreter and port it runs it with, and serves it on ``host``.
    """

    name: str  # the model's name: LAB_SERVER_MODEL, so every response says which server answered
    target: targets.Target  # a registry target, a bench variant or a shape tune builds
    log_dir: Path  # <stem>.stdout.log and <stem>.stderr.log go here
    app: str = targets.OUR_APP  # the WSGI app to serve: "demo" or a spec as gunicorn takes it
    # Any app but the demo one is served through the wrapper that adds the identity headers
    # (LAB_BYO_APP names the real app); False serves ``app`` as given (bench's slowed demo app).
    wrap_byo: bool = True
    port: int | None = None  # on ``host``; None: a free port, chosen when the runner is made
    # Where the target is reached: loopback, or one interface other machines use (tune --expect-workers)
    host: str = "127.0.0.1"
    cores: tuple[int, ...] | None = None  # CPUs the target may run on (None: the scheduler decides)
    env: Mapping[str, str] = field(default_factory=dict)  # more environment, over the runner's own
    cwd: Path | None = None  # None: this process's working directory (a bring-your-own module there imports)
    python: Path | None = None  # another environment's interpreter for the same command (compare --venv)
    stem: str = ""  # log file names ("" : ``name``)
    # Where the identity wrapper is imported from: None, ``loadtest`` with the project root on the
    # path; else a staged copy under a unique name, and the project stays off the team's path.
    shim: Shim | None = None

    @property
    def byo(self) -> bool:
        return self.wrap_byo and self.app != targets.OUR_APP

    @property
    def served_app(self) -> str:
        """What the server loads: the demo, the app itself, or the wrapper that adds identity headers."""
        if self.app == targets.OUR_APP:
            return targets.DEMO_MODULE
        if not self.byo:
            return self.app
        return targets.byo_wrapper(self.shim.package) if self.shim else targets.BYO_WRAPPER

    def command(self, port: int, host: str | None = None) -> list[str]:
        """The command line serving on ``host`` (default ``self.host``; a container binds all of its own)."""
        argv = self.target.command(self.served_app, port, host=host or self.host)
        if self.python is not None:
            argv[0] = str(self.python)
        return argv

    def environment(self) -> dict[str, str]:
        """The variables every backend sets, on top of its own base (this process's, an image's)."""
        env = {"LAB_SERVER_MODEL": self.name, "PYTHONUNBUFFERED": "1"}
        if self.byo:
            env["LAB_BYO_APP"] = self.app
        return {**env, **self.env}


@dataclass(frozen=True)
class Envelope:
    """What confined a target's last life, as the backend measured it: recorded beside its figures."""

    runtime: str  # the backend: "local", "docker"
    cpu_quota_us: int | None = None  # CFS quota per period, read back from the cgroup (None: no quota)
    cpu_period_us: int | None = None
    memory_limit_mb: float | None = None  # MiB the kernel allows before it OOM-kills (None: no limit)
    oom_kills: int | None = None  # the OOM killer's kills (None: this backend cannot see them)
    oom_killed: bool = False  # the target's main process was one of them

    @property
    def cpu_quota(self) -> float | None:
        """The quota in cores (150000 us per 100000 us -> 1.5)."""
        if self.cpu_quota_us is None or not self.cpu_period_us:
            return None
        return self.cpu_quota_us / self.cpu_period_us


class TargetRunner(ABC):
    """One target's life: start, ready, usage, stop, logs. One object per target; it may start again.

    A subclass implements the abstract methods below; each states what it must do.
    ``start``, ``wait_ready`` and ``stop`` are written here once, on top of them.
    Every method is called from the orchestrating thread, except ``usage`` and
    ``processes``, which a sampling thread calls while the target runs.

    A backend takes its own settings in its constructor after the ``Launch`` (a
    container: image, CPU quota, memory limit); ``Launch`` stays backend-neutral.
    ``launch.python`` and ``launch.cwd`` are the local interpreter and directory:
    a container uses its image's interpreter and mounts ``launch.cwd`` instead.

    Use: ``start()``, ``wait_ready(timeout)``, then ``url``; ``with runner:`` stops it
    on the way out, whatever happened.
    """

    runtime: ClassVar[str] = ""  # the backend's name in the record (``Envelope.runtime``)

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.port = launch.port or free_port()
        self.starts = 0  # how many times ``start`` ran: the second start's logs are <name>.2.*
        self.problem = ""  # why the target is not serving ("" while it is, or before it starts)
        self.notes: list[str] = []  # facts a reader of the results should know (no /health, ...)

    # -- what a backend implements -------------------------------------------------------------

    @abstractmethod
    def _start(self) -> None:
        """Launch the target (returns at once, before it is ready); raise OSError if it cannot be launched.

        It must: serve on ``launch.host``:``self.port`` (a container publishes its
        port there); set ``launch.environment()``; apply ``launch.cores`` (and the
        backend's own limits) before the server's first instruction; send its
        stdout and stderr to ``stdout_log`` / ``stderr_log``, as they come or at the
        latest once it has exited (``stderr_tail`` reads them; a backend may
        override that instead). Called again after ``stop`` for a new life.
        """

    @abstractmethod
    def alive(self) -> bool:
        """True while the target runs (started and not exited). Never blocks."""

    @abstractmethod
    def terminate(self) -> None:
        """Ask the target to stop gracefully (SIGTERM to its root process) and return at once.

        A target that has exited, or never started, is left alone.
        """

    @abstractmethod
    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the target to exit: its exit status, or None if it still runs.

        Once it has exited, the same status at once, every time; None at once if it was never launched.
        """

    @abstractmethod
    def kill(self) -> None:
        """Kill the target and everything it started, at once (SIGKILL). Idempotent.

        Afterwards ``wait_exit`` still answers with the exit status and the logs are
        still readable (a container is removed only once they are saved).
        """

    @abstractmethod
    def usage(self, memory: bool = False) -> Reading | None:
        """What the target has used so far, all of it: None if it is not running.

        ``cpu_s``: cumulative CPU seconds of everything it runs, children it has
        reaped included (a process tree's times, a cgroup's usage). Memory only when
        ``memory`` (it may cost a walk of every process's page map): bytes and their
        kind. ``per_process`` where the backend sees pids; ``counters`` for
        anything else cumulative it reads (a CPU quota's throttling, say). Called
        from a sampling thread every fraction of a second: no logging, no waits.
        """

    # -- what a backend may override -----------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """The target's live processes as this machine sees them; [] when the backend cannot see them.

        For figures only a process list gives (threads, fds, connections, run-queue
        waits); their readers say "not measured" on [].
        """
        return []

    def envelope(self) -> Envelope:
        """The limits the target ran under and what they did to it (OOM kills); this: none seen.

        A backend that imposes limits overrides it; valid after ``stop`` too.
        """
        return Envelope(self.runtime)

    def exit_text(self) -> str:
        """How it ended, for a reader: "exited with status 1" (a container may say "OOM-killed")."""
        status = self.wait_exit(0)
        return "still running" if status is None else f"exited with status {status}"

    # -- written once for every backend --------------------------------------------------------

    @property
    def name(self) -> str:
        return self.launch.name

    @property
    def url(self) -> str:
        host = self.launch.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def stem(self) -> str:
        base = self.launch.stem or self.launch.name
        return base if self.starts <= 1 else f"{base}.{self.starts}"

    @property
    def stdout_log(self) -> Path:
        return self.launch.log_dir / f"{self.stem}.stdout.log"

    @property
    def stderr_log(self) -> Path:
        return self.launch.log_dir / f"{self.stem}.stderr.log"

    def command_text(self) -> str:
        """The command the target runs, as a reader would type it (recorded in a result row)."""
        return " ".join(self.launch.command(self.port))

    def start(self) -> bool:
        """Launch it (see ``_start``); False, with ``problem`` saying why, if it could not be launched."""
        self.starts += 1
        self.problem = ""
        self.launch.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except OSError as exc:
            self.problem = f"failed to start: {exc}"
            return False
        return True

    def wait_ready(self, timeout: float) -> bool:
        """Until the target answers HTTP (any status); on failure ``problem`` says why and it is stopped."""
        if self.starts == 0:
            raise RuntimeError(f"{self.name}: wait_ready before start")
        if self.problem:
            return False
        status, why = wait_http(self.url + "/health", self._exited, timeout)
        if status is None:
            self.problem = f"failed to start: {why}"
            self.stop()
            return False
        if status != 200 and not self.notes:
            self.notes.append(f"no /health (HTTP {status}); ready on first HTTP answer")
        return True

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """Graceful stop: ``terminate``, ``kill`` after ``grace`` s; the exit status (None: never started)."""
        if self.starts == 0:
            return None
        self.terminate()
        status = self.wait_exit(grace)
        self.kill()  # the stragglers: what outlived its root, or the root itself after the grace
        return status if status is not None else self.wait_exit(grace)

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        """The last lines of this life's stderr, and its first exception line if that scrolled out."""
        return tail(self.stderr_log, lines)

    def __enter__(self) -> TargetRunner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _exited(self) -> str | None:
        return None if self.alive() else f"{self.exit_text()} before answering HTTP"


# How a caller is told which backend to use: a class (``LocalRunner``) or any callable making one.
RunnerFactory = Callable[[Launch], TargetRunner]
