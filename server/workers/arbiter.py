"""The prefork master's bookkeeping: spawn, reap, replace, resize, kill workers.  Fork: :meth:`Arbiter.spawn`.

Modelled on gunicorn's ``arbiter.py``, smaller: the master's loop
(:meth:`server.workers.prefork.PreforkServer.serve_forever`) calls :meth:`reap`,
:meth:`murder_stuck` and :meth:`manage` each time a signal (SIGCHLD above all)
or its short tick wakes it.  Nothing here runs in a signal handler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from server.workers.heartbeat import MAX_WORKERS, HeartbeatBoard

if TYPE_CHECKING:
    from server.base import BaseServer

log = logging.getLogger("wsgi_lab")

FORK_RETRY_SECONDS = 1.0  # after a failed fork, the arbiter tries again this much later
# Blocked from just before the fork until the worker has its own handlers: a SIGTERM sent to a
# worker that has only just been born then waits for them instead of being lost.
BLOCKED_DURING_FORK = {signal.SIGTERM, signal.SIGQUIT}


@dataclass
class Worker:
    pid: int
    slot: int
    started: float = field(default_factory=time.monotonic)
    retiring: bool = False  # sent SIGTERM (or SIGKILL): no longer counts towards the target
    killed_for: str = ""  # why the arbiter SIGKILLed it, for the log line when it is reaped


class Arbiter:
    """Keeps ``target`` workers alive; the table of workers lives only in the master."""

    def __init__(
        self, server: BaseServer, target: int, run_worker: Callable[[int], NoReturn], board: HeartbeatBoard
    ) -> None:
        self.server = server
        self.target = target
        self.max_workers = MAX_WORKERS
        self.run_worker = run_worker
        self.board = board
        self.workers: dict[int, Worker] = {}
        self.next_fork = 0.0

    def active(self) -> list[Worker]:
        return [w for w in self.workers.values() if not w.retiring]

    def manage(self) -> None:
        """Start workers up to the target; retire the oldest beyond it."""
        active = sorted(self.active(), key=lambda w: w.started)
        for worker in active[: max(0, len(active) - self.target)]:
            self.retire(worker)
        for _ in range(self.target - len(active)):
            if not self.spawn():
                break

    def spawn(self) -> bool:
        """Fork one worker; the child never returns from here.  False if the fork failed."""
        if time.monotonic() < self.next_fork:
            return False
        used = {w.slot for w in self.workers.values()}
        slot = next(i for i in range(self.max_workers) if i not in used)
        self.board.set(slot, 0.0)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_DURING_FORK)
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes or memory: keep the workers we have, retry later
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            log.error("cannot fork a worker: %s; retrying in %gs", exc, FORK_RETRY_SECONDS)
            self.next_fork = time.monotonic() + FORK_RETRY_SECONDS
            return False
        if pid == 0:
            self.run_worker(slot)  # unblocks once the worker's handlers are installed
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.workers[pid] = Worker(pid, slot)
        log.info("worker %d started (slot %d)", pid, slot)
        return True

    def reap(self) -> None:
        """Collect every exited worker without blocking (no zombies) and say why it left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.board.set(worker.slot, 0.0)
            code = os.waitstatus_to_exitcode(status)
            if worker.killed_for:
                log.warning("worker %d killed: %s", pid, worker.killed_for)
            elif code < 0:
                log.warning("worker %d died of %s", pid, signal.Signals(-code).name)
            elif code != 0 and not self.server.stop.is_set():
                log.warning("worker %d exited with status %d", pid, code)
            else:
                log.info("worker %d exited", pid)

    def murder_stuck(self, timeout: float) -> None:
        """SIGKILL every worker whose oldest request has run longer than ``timeout`` (the heartbeat)."""
        now = time.monotonic()
        for worker in self.workers.values():
            since = self.board.busy_since(worker.slot)
            if since and now - since > timeout and not worker.killed_for:
                worker.killed_for = f"a request ran longer than --timeout {timeout:g}s"
                worker.retiring = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)

    def resize(self, delta: int) -> None:
        new = min(self.max_workers, max(1, self.target + delta))
        log.info("%s: workers %d -> %d", "SIGTTIN" if delta > 0 else "SIGTTOU", self.target, new)
        self.target = new

    def retire(self, worker: Worker) -> None:
        """Graceful: the worker finishes what it serves (and what waits in the backlog), then exits."""
        worker.retiring = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGTERM)

    def retire_all(self) -> None:
        for worker in self.active():
            self.retire(worker)

    def kill_all(self, signum: int) -> None:
        """Signal every worker; safe on the forced-exit path (no logging)."""
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
