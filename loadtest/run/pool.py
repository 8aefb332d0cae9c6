"""The local targets of one comparison and when each runs: all up at once, or one at a time.

- Without ``--port`` every target starts once, on its own free port, and stays up for
  the whole comparison: an idle server costs next to no CPU.
- With ``--port`` the targets share one port, so each run starts its server and
  ``after_run`` stops it.
- With ``--hosts`` the servers are already running: the pool is empty.

A target that failed to start while the pool keeps targets up is not started again
for every run: its ``problem`` stands. What this module does not know: how a target
is started (a ``TargetRunner`` does that) or what is measured.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.run.local import LocalRunner
from loadtest.run.plan import Plan
from loadtest.run.runner import Launch, RunnerFactory, TargetRunner
from loadtest.run.shim import staged


def launch_for(plan: Plan, name: str, log_dir: Path) -> Launch:
    """How the comparison runs target ``name``: its options, the plan's app, port and interpreter."""
    target = plan.target(name)
    assert target is not None, name
    return Launch(
        name=name,
        target=target,
        log_dir=log_dir,
        app=plan.app,
        port=plan.port,
        python=plan.python if plan.venv is not None else None,
        cwd=plan.team.chdir,
        env=plan.team.env,
        shim=None if plan.team.app.demo else staged(),
    )


class Pool:
    """The runners of a comparison's local targets, by name (empty with ``--hosts``)."""

    def __init__(self, plan: Plan, out: Path, runner: RunnerFactory = LocalRunner) -> None:
        self.plan = plan
        self.keep_up = plan.port is None and not plan.hosts
        logs = out / "targets"
        names = [] if plan.hosts else plan.targets
        self.servers: dict[str, TargetRunner] = {n: runner(launch_for(plan, n, logs)) for n in names}

    def start_all(self) -> None:
        """With targets kept up: start every one, then wait for each (they boot side by side)."""
        if not self.keep_up:
            return
        for server in self.servers.values():
            server.start()
        for server in self.servers.values():
            server.wait_ready(self.plan.startup_timeout)

    def ready(self, name: str) -> TargetRunner:
        """The target, started (again) if it is not running; ``problem`` says why it is not serving."""
        server = self.servers[name]
        if server.alive() or (self.keep_up and server.starts and server.problem.startswith("failed")):
            return server
        server.start()
        server.wait_ready(self.plan.startup_timeout)
        return server

    def after_run(self, name: str) -> None:
        if not self.keep_up:
            self.servers[name].stop()

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
