"""Prefork: N worker processes forked at start share the listening socket; an arbiter keeps N alive.

The master process only manages workers (:class:`server.workers.arbiter.Arbiter`,
where the fork is); it never accepts.  Each worker runs an existing model on the
inherited listener -- the single model (one connection at a time) or, with
``--threads N > 1``, the threaded model with N threads (gunicorn's gthread shape)
-- so the serving logic exists once.  The app is imported once in the master
before the fork (gunicorn's ``--preload``), and copy-on-write shares it.

Policy choices and known limits:

- **Keep-alive in a one-connection worker.**  Unlike gunicorn's sync worker
  (which closes after every response), a worker keeps a connection alive --
  with the single model's rule: while clients wait on the shared listener, a
  busy connection keeps its worker for a 50 ms time slice, after which its
  next response says ``Connection: close``, and an idle one is dropped.  So an
  idle keep-alive client never holds a worker while others wait.  The drop of
  an idle connection can race a request the client is just sending (as with
  any server that closes idle connections; RFC 9112 9.3.1 lets clients retry).
  With ``--threads N > 1`` a worker is the threaded model and keeps its rule: an
  idle keep-alive connection holds one of its N threads up to ``--keep-alive``
  (gunicorn's gthread does the same); other workers take the waiting clients.
- **Heartbeat = ``--timeout`` per request.**  A worker records in shared
  memory when the oldest request it is running started; the arbiter SIGKILLs a
  worker whose request has run longer than ``--timeout`` and starts another.
  That differs from the per-read ``--timeout`` of the connection loop, which
  bounds each wait on the client: the heartbeat bounds the *application*.  An
  idle worker (waiting in ``accept`` or on a keep-alive client) never counts as stuck.
- **Recycling.**  After ``--max-requests`` (plus up to ``--max-requests-jitter``)
  requests a worker answers the current one with ``Connection: close``, stops
  accepting and exits 0; the arbiter replaces it.
- **Signals.**  Master: SIGTERM/SIGINT graceful (workers get SIGTERM: each
  serves what waits in the backlog, then its in-flight requests, then exits),
  SIGQUIT / a second SIGINT / the graceful timeout SIGKILL the workers and exit,
  SIGTTIN / SIGTTOU add / remove a worker, SIGHUP replaces every worker
  gracefully (the app is not re-imported: it was loaded before the fork).
  Workers ignore SIGINT (a Ctrl-C reaches the whole process group; the master
  decides) and exit at once on SIGQUIT.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from server.base import BaseServer, ImmediateExit, flush_logs
from server.workers.arbiter import BLOCKED_DURING_FORK, Arbiter
from server.workers.heartbeat import HeartbeatBoard
from server.workers.single import SingleServer
from server.workers.threaded import ThreadedServer
from server.wsgi import WSGIApp

log = logging.getLogger("wsgi_lab")

ARBITER_TICK = 0.25  # seconds between two heartbeat checks of the arbiter
DEFAULT_THREADS = 1


class RequestMeter:
    """Wraps the app in a worker: writes the heartbeat and counts requests for ``--max-requests``.

    A request counts as running from the app call until its response iterable
    is closed (at once for a list body, which is already complete).
    """

    def __init__(self, app: WSGIApp, board: HeartbeatBoard, slot: int, limit: int) -> None:
        self.app, self.board, self.slot, self.limit = app, board, slot, limit
        self.on_limit: Callable[[], None] = lambda: None
        self.served = 0
        self._running: dict[int, float] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        token = self._begin()
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self._end(token)
            raise
        if type(result) in (list, tuple):
            self._end(token)
            return result
        return _ClosingIterable(result, lambda: self._end(token))

    def _begin(self) -> int:
        with self._lock:
            self.served += 1
            token = self.served
            self._running[token] = time.monotonic()
            self.board.set(self.slot, min(self._running.values()))
            reached = self.limit and self.served == self.limit
        if reached:  # before the app runs, so this response already says Connection: close
            self.on_limit()
        return token

    def _end(self, token: int) -> None:
        with self._lock:
            self._running.pop(token, None)
            self.board.set(self.slot, min(self._running.values(), default=0.0))


class _ClosingIterable:
    """The app's response iterable, plus a callback when the server closes it (PEP 3333 ``close``)."""

    def __init__(self, result: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._result, self._on_close = result, on_close

    def __iter__(self):
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


class PreforkWorker(BaseServer):
    """The worker half, mixed into a serving model (:class:`SingleWorker`, :class:`ThreadedWorker`).

    Runs only in a child forked by the arbiter.  Differences from the model run
    alone: it inherits the listener, ignores SIGINT, exits 0 after
    ``--max-requests`` without draining the backlog (other workers serve it),
    and never returns (:meth:`serve_as_worker` ends in ``os._exit``).
    """

    multiprocess = True
    recycling = False

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        signal.signal(signal.SIGINT, lambda signum, frame: None)

    def recycle(self) -> None:
        """``--max-requests`` reached: stop accepting; called from the thread serving the request."""
        log.info("worker %d: reached --max-requests: exiting after the requests in flight", os.getpid())
        self.recycling = True
        self.stop.set()
        self.wake()

    def serve_as_worker(self, listener: socket.socket) -> NoReturn:
        """Runs in the child; never returns."""
        self.listener = listener
        self.address = listener.getsockname()[:2]
        status = 0
        try:
            self.install_signal_handlers()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, BLOCKED_DURING_FORK)
            self.open_spare_fd()
            self.serve_forever()
            self.handle_signals()  # log the SIGTERM that stopped us, if one did
            if not self.recycling:
                self.finish_queued()
            while self.busy():
                self.wait_for_wake(0.5)
        except ImmediateExit as exc:
            log.warning("worker %d: %s", os.getpid(), exc.reason)
            status = exc.status
        except Exception:
            log.exception("worker %d failed", os.getpid())
            status = 1
        finally:
            flush_logs()
            os._exit(status)


class SingleWorker(PreforkWorker, SingleServer):
    """A prefork worker serving one connection at a time (``--threads 1``)."""


class ThreadedWorker(PreforkWorker, ThreadedServer):
    """A prefork worker with a pool of ``--threads`` connection threads."""

    multithread = True


class PreforkServer(BaseServer):
    """The master: an arbiter over ``--workers`` processes; never accepts a connection itself."""

    mode = "prefork"
    multiprocess = True
    extra_signals = (signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU, signal.SIGHUP)

    def __init__(self, app: WSGIApp, config) -> None:
        super().__init__(app, config)
        self.threads = config.threads or DEFAULT_THREADS
        self.board = HeartbeatBoard()
        self.arbiter = Arbiter(self, config.workers, self.run_worker, self.board)
        gc.freeze()  # as in forking: copy-on-write then really shares the loaded app

    def limits_note(self) -> str:
        return f" workers={self.config.workers} threads={self.threads}"

    def run_worker(self, slot: int) -> NoReturn:
        """Runs in a freshly forked child: become a worker on ``slot``; never returns."""
        try:
            self.reset_signals_in_child()
            self.stop.close()
            if self._spare_fd is not None:
                os.close(self._spare_fd)
            limit = self.config.max_requests
            if limit:
                limit += random.randint(0, self.config.max_requests_jitter)
            meter = RequestMeter(self.app, self.board, slot, limit)
            worker = (ThreadedWorker if self.threads > 1 else SingleWorker)(meter, self.config)
            meter.on_limit = worker.recycle
            if isinstance(worker, ThreadedServer):
                worker.max_threads = self.threads
            assert self.listener is not None
        except BaseException:
            log.exception("worker %d could not start", os.getpid())
            flush_logs()
            os._exit(1)
        worker.serve_as_worker(self.listener)

    # --- the arbiter's loop ----------------------------------------------------------------------

    def serve_forever(self) -> None:
        """The master's loop: keep the workers alive until a stop signal.  Main thread."""
        self.arbiter.manage()
        while not self.stop.is_set():
            self.wait_for_wake(ARBITER_TICK)  # SIGCHLD and every other signal wake us at once
            if self.stop.is_set():
                break
            self.arbiter.reap()
            self.arbiter.murder_stuck(self.config.timeout)
            self.arbiter.manage()

    def on_signal(self, signum: int) -> None:
        if signum == signal.SIGTTIN:
            self.arbiter.resize(+1)
        elif signum == signal.SIGTTOU:
            self.arbiter.resize(-1)
        elif signum == signal.SIGHUP:
            log.info("SIGHUP: replacing every worker gracefully")
            self.arbiter.retire_all()

    def finish_queued(self) -> None:
        """Every worker gets SIGTERM: each serves what waits in the backlog, then exits."""
        self.arbiter.retire_all()

    def busy(self) -> bool:
        self.arbiter.reap()
        return bool(self.arbiter.workers)

    def kill_workers(self) -> None:
        self.arbiter.kill_all(signal.SIGKILL)
