"""The target runner's container backend: a server in its own container, under a real quota and limit.

Policy choices:

- One container per life of a target, from the project's image (``image.py``) or one
  built on it; the command is the target's own, with the image's ``python`` and
  console scripts (``image_argv``), listening on 8000 and published on
  ``launch.host``:``port`` only (loopback unless the caller names one interface). The
  load generator stays on the host, outside the cgroup.
- ``Box.cpus`` becomes the CFS quota (``nano_cpus``: 1.5 -> 150000 us per 100000 us),
  ``Box.memory_bytes`` the memory limit, with no swap above it: a shape that does not
  fit is killed by the kernel, as in a deployment. ``launch.cores`` become the
  container's cpuset (the quota runs on them, the load generator on the others).
- docker-init (tini) is PID 1 and passes SIGTERM to the server, so servers with no
  handler of their own stop at once, and every server stops as ``docker stop`` stops it.
- The user's app directory (``Box.app_dir``) is mounted read-only at ``APP_MOUNT``, the
  container's working directory and first on ``PYTHONPATH``, when the app is not the demo
  one; the identity wrapper comes from the staged shim (``Box.shim``, mounted read-only at
  ``SHIM_MOUNT``), and the project itself stays off the path but for our own servers
  (``python -m server``, mounted at ``PROJECT_IN_IMAGE`` when the image is the team's).
  Every container runs with this process's uid and gid (root's included), so it reads the
  app as the user does (``check_readable`` says so before calibration when it cannot).
- Logs are copied from the engine into the runner's log files when the container
  ends (and when a tail is asked for); the container is removed on ``kill``.
- What a reader needs after the fact -- the limits read back from the cgroup, the
  OOM kills, whether the main process died of one -- stays on the runner
  (``limits``, ``oom_kills``, ``oom_killed``) after the container is gone.

Known limits: the engine's stats do not see processes, so ``processes()`` is empty
(no thread, fd or run-queue figures); they come once a second, so a rate over a
window shorter than two seconds is unknown; memory is the cgroup's charge (RSS and
kernel memory, without page cache), not PSS.

What this module does not know: what is measured with the target.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from loadtest.measure.cpuwatch import Reading
from loadtest.registry import targets
from loadtest.run import engine
from loadtest.run.processes import STDERR_TAIL_LINES
from loadtest.run.runner import Envelope, Launch, TargetRunner
from loadtest.run.shim import Shim

PORT = targets.COMPOSE_PORT  # every server listens here inside its container, as in docker-compose.yml
APP_MOUNT = "/srv/app"
SHIM_MOUNT = "/srv/wsgilab-shim"
PROJECT_IN_IMAGE = "/srv/wsgi-lab"  # the Dockerfile's WORKDIR and PYTHONPATH
POLL_S = 0.1
OOM_EXIT = 137  # 128 + SIGKILL: what the kernel's OOM killer leaves
MiB = 2**20


@dataclass(frozen=True)
class Box:
    """What every container of a run gets: image, CPU quota, memory limit, app mount, labels."""

    image: str
    cpus: float
    memory_bytes: int
    run_id: str  # RUN_LABEL's value: this run's containers, and no one else's, are removed at its end
    app_dir: Path | None = None  # mounted read-only when the app is not the demo one
    shim: Shim | None = None  # the identity wrapper, staged, mounted beside the app
    project_dir: Path | None = None  # mounted for our own servers when the image is the team's

    def labels(self) -> dict[str, str]:
        return {engine.LABEL: "1", engine.RUN_LABEL: self.run_id}

    @staticmethod
    def user() -> str:
        return f"{os.getuid()}:{os.getgid()}"

    def mounts(self, kind: str) -> tuple[dict[str, dict[str, str]], list[str]]:
        """The read-only mounts of a bring-your-own app's container and its PYTHONPATH, in order."""
        mounts, path = {}, []
        if self.app_dir is not None:
            mounts[str(self.app_dir)] = {"bind": APP_MOUNT, "mode": "ro"}
            path.append(APP_MOUNT)
        if self.shim is not None:
            mounts[str(self.shim.directory)] = {"bind": SHIM_MOUNT, "mode": "ro"}
            path.append(SHIM_MOUNT)
        if kind == "lab" or self.shim is None:
            if self.project_dir is not None:
                mounts[str(self.project_dir)] = {"bind": PROJECT_IN_IMAGE, "mode": "ro"}
            path.append(PROJECT_IN_IMAGE)
        return mounts, path


def image_argv(argv: list[str]) -> list[str]:
    """A local command line as the image runs it: its own ``python``, console scripts by name."""
    head = Path(argv[0])
    if argv[0] == sys.executable:
        return ["python", *argv[1:]]
    if head.parent == Path(sys.executable).parent:
        return [head.name, *argv[1:]]
    return list(argv)


class ContainerRunner(TargetRunner):
    """A target in its own container, under ``box``'s quota and limit, stopped by the engine."""

    runtime = "docker"

    def __init__(self, launch: Launch, box: Box, client: docker.DockerClient) -> None:
        super().__init__(launch)
        self.box, self.client = box, client
        self.container: Container | None = None
        self.limits: engine.Limits | None = None  # read back from the cgroup once the container runs
        self.oom_kills = 0  # the kernel's OOM kills in this life's container
        self.oom_killed = False  # its main process died of one
        self._exit: int | None = None
        self._feed: engine.StatsFeed | None = None
        self._since = dt.datetime.now(dt.UTC)

    # -- the backend's methods ------------------------------------------------------------------

    def _start(self) -> None:
        self.container, self.limits, self._exit, self._feed = None, None, None, None
        self.oom_kills, self.oom_killed = 0, False
        self._since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        env = self.launch.environment()
        mounts, workdir = {}, None
        if self.launch.byo:
            mounts, path = self.box.mounts(self.launch.target.kind)
            env["PYTHONPATH"] = ":".join(path)
            workdir = APP_MOUNT if self.box.app_dir is not None else None
        try:
            self.container = self.client.containers.run(
                self.box.image,
                image_argv(self.launch.command(PORT, host="0.0.0.0")),
                detach=True,
                init=True,
                environment=env,
                labels=self.box.labels(),
                nano_cpus=round(self.box.cpus * 1e9),
                mem_limit=self.box.memory_bytes,
                memswap_limit=self.box.memory_bytes,
                ports={f"{PORT}/tcp": (self.launch.host, self.port)},
                volumes=mounts,
                user=self.box.user(),
                working_dir=workdir,
                cpuset_cpus=",".join(map(str, self.launch.cores)) if self.launch.cores else None,
            )
        except docker.errors.DockerException as exc:
            raise OSError(f"the engine refused the container: {engine.first_line(exc)}") from None
        self._feed = engine.StatsFeed(self.client, self.container.id)
        self.limits = engine.read_limits(self.container)

    def alive(self) -> bool:
        """One request to the local engine (milliseconds): the container's state."""
        return self._state().get("Running", False)

    def terminate(self) -> None:
        if self.alive():
            assert self.container is not None
            with contextlib.suppress(docker.errors.DockerException):
                self.container.kill(signal="SIGTERM")

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self._exit is None and self.container is not None:
            state = self._state()
            if state and not state.get("Running", False) and state.get("Status") != "created":
                self._ended(state)
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        return self._exit

    def kill(self) -> None:
        """Remove the container (the engine kills what still runs), its logs and OOM figures kept first."""
        if self.container is None:
            return
        if self._exit is None:
            with contextlib.suppress(docker.errors.DockerException):
                self.container.kill()
            self.wait_exit(10.0)
        self._save_logs()
        self.oom_kills = engine.oom_kills(self.client, self.container.id, self._since)
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True)

    def usage(self, memory: bool = False) -> Reading | None:
        latest = self._feed.latest if self._feed is not None and self._exit is None else None
        if latest is None:
            return None
        at, used = latest  # memory comes with every reading, asked or not: the engine's stats carry it
        kind = "cgroup" if used.memory_bytes is not None else ""
        return Reading(used.cpu_s, used.memory_bytes, kind, counters=used.counters(), at=at)

    def envelope(self) -> Envelope:
        limits = self.limits
        memory = limits.memory_limit_bytes if limits else None
        return Envelope(
            self.runtime,
            cpu_quota_us=limits.cpu_quota_us if limits else None,
            cpu_period_us=limits.cpu_period_us if limits else None,
            memory_limit_mb=memory / MiB if memory else None,
            oom_kills=self.oom_kills if self._exit is not None else self.live_oom_kills(),
            oom_killed=self.oom_killed,
        )

    def exit_text(self) -> str:
        status = self.wait_exit(0)
        if status is None:
            return "still running"
        if self.oom_killed:
            return f"killed by the OOM killer (exit {status}; memory limit {self.memory_limit_text()})"
        return f"exited with status {status}"

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        self._save_logs()
        return super().stderr_tail(lines)

    def command_text(self) -> str:
        return " ".join(image_argv(self.launch.command(PORT, host="0.0.0.0")))

    # -- what a reader of the run needs ---------------------------------------------------------

    def memory_limit_text(self) -> str:
        limit = self.limits.memory_limit_bytes if self.limits else self.box.memory_bytes
        return f"{limit / MiB:.0f} MiB" if limit else "none"

    def live_oom_kills(self) -> int:
        """OOM kills so far in this life's container (the engine's events; a worker's too)."""
        if self.container is None:
            return 0
        return engine.oom_kills(self.client, self.container.id, self._since)

    # -- helpers --------------------------------------------------------------------------------

    def _state(self) -> dict:
        if self.container is None:
            return {}
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return {"Running": False, "Status": "removed"}
        except docker.errors.DockerException:
            return {}
        return self.container.attrs.get("State", {})

    def _ended(self, state: dict) -> None:
        self._exit = int(state.get("ExitCode", -1))
        self.oom_killed = bool(state.get("OOMKilled")) or (
            self._exit == OOM_EXIT and self.live_oom_kills() > 0
        )

    def _save_logs(self) -> None:
        if self.container is None:
            return
        self.launch.log_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(docker.errors.DockerException, OSError):
            self.stdout_log.write_bytes(self.container.logs(stdout=True, stderr=False))
            self.stderr_log.write_bytes(self.container.logs(stdout=False, stderr=True))
