"""What every model shares: the listening socket, the accept loop, signals, graceful shutdown.

A model (see :mod:`server.workers`) subclasses :class:`BaseServer` and fills in
its hooks, in the style of the stdlib's socketserver; each hook states its
contract on itself.  A model whose loop owns every connection (an event loop,
the prefork arbiter) overrides :meth:`BaseServer.serve_forever` and keeps the
rest: signals, the stop latch, the graceful-timeout watchdog, the exit path.

Policy choices and known limits:

- **Signals only record.**  A handler appends the signal to a queue and wakes
  the main loop (``signal.set_wakeup_fd``); the loop logs and acts.  A stop
  signal also sets the stop latch -- a flag and a one-byte pipe write, both
  async-signal-safe -- so code serving in the main thread (single mode, a
  prefork worker) sees it at once.  Logging from a handler can fail with
  "reentrant call" when the signal lands mid-write; ours never log.
- **Escalation while the main thread serves.**  Where the main thread is busy
  in a request, nothing would run the loop: a second SIGINT, SIGQUIT or the
  expired graceful timeout then raise :class:`ImmediateExit` in it (as Python
  raises KeyboardInterrupt), which unwinds to :meth:`BaseServer.run`; that
  logs and exits.  Elsewhere the loop raises it itself.
- **Graceful stop loses nothing queued.**  On the first SIGTERM/SIGINT the
  accept loop ends, then every connection already waiting in the listen
  backlog is accepted and served (its response says ``Connection: close``),
  then the listener closes, then in-flight requests finish -- all bounded by
  ``--graceful-timeout`` (a SIGALRM the loop waits on), after which the
  process exits 0 anyway.  A second SIGINT or a SIGQUIT exits at once.
- **Out of file descriptors.**  ``accept()`` failing with EMFILE/ENFILE sheds
  the waiting client: a spare descriptor held for this is closed, the client
  accepted and closed at once, the spare reopened.  The error is logged at
  most once a second, and without a spare the loop pauses instead of spinning.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import select
import selectors
import signal
import socket
import threading
import time
import weakref
from typing import ClassVar

from server.config import Config
from server.connection import ServeContext, serve_connection
from server.wsgi import WSGIApp

log = logging.getLogger("wsgi_lab")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Signals every model handles; a model adds its own in ``extra_signals``.
BASE_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGALRM)
FD_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
SHED_LOG_INTERVAL = 1.0  # seconds between two "out of file descriptors" lines
NO_SPARE_PAUSE = 0.1  # seconds the accept loop rests when it cannot even shed a connection


class ImmediateExit(BaseException):
    """Leave now: a second SIGINT, SIGQUIT or the graceful timeout.  Caught in :meth:`BaseServer.run`.

    A BaseException, so that the app's and the connection loop's ``except Exception`` let it through.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class StopLatch:
    """A flag that, once set, stays set -- and can be waited on with poll/select.

    It is a pipe written once: every thread selects on the read end, and a
    forked child inherits it, so the parent's ``set()`` reaches the children too.
    ``set()`` is async-signal-safe (an assignment and one ``write``).  Only in a
    forked child does ``is_set()`` look at the pipe (the parent may have set it);
    elsewhere it is a plain attribute read, with no system call per request.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self._set = False
        self._inherited = False  # True in a forked child: the parent may set it, seen through the pipe
        latch = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _mark_inherited(latch()))

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        if not self._set and self._inherited and select.select([self._read], [], [], 0)[0]:
            self._set = True  # set by the parent of this (forked) process
        return self._set

    def fileno(self) -> int:
        return self._read

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def _mark_inherited(latch: StopLatch | None) -> None:
    if latch is not None:
        latch._inherited = True


class BaseServer:
    """Bind, accept, hand each connection to :meth:`handle`; stop cleanly on a signal.

    Hooks a model may override (each states its contract): :meth:`handle`,
    :meth:`has_capacity`, :meth:`busy`, :meth:`on_signal`, :meth:`kill_workers`,
    :meth:`limits_note`, :meth:`finish_queued` and, for a model whose own loop
    owns every connection, :meth:`serve_forever`.
    """

    mode: ClassVar[str] = ""
    multithread: ClassVar[bool] = False
    multiprocess: ClassVar[bool] = False
    # Not None: connections are served with this keep-alive time slice, yielding to clients
    # waiting on the listener (see server.connection.ServeContext).
    yield_slice: ClassVar[float | None] = None
    extra_signals: ClassVar[tuple[signal.Signals, ...]] = ()

    def __init__(self, app: WSGIApp, config: Config) -> None:
        self.app = app
        self.config = config
        self.stop = StopLatch()
        self.listener: socket.socket | None = None
        self.address: tuple[str, int] = config.bind
        # Signal handlers (via signal.set_wakeup_fd) and finished threads write here: the loop wakes up.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.signals: collections.deque[int] = collections.deque()  # appended by handlers only
        self.stopping = False  # the loop's view: a stop signal has been acted on
        self._stop_signals_seen = 0  # the handlers' view, to tell a second SIGINT from the first
        self._stop_signals_seen_by_loop = 0  # the loop's view of the same
        self._main_thread_serving = False
        self._spare_fd: int | None = None
        self._shed_logged = 0.0
        self._shed_count = 0

    # --- setup -----------------------------------------------------------------------------------

    def bind(self) -> None:
        host, port = self.config.bind
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(self.config.backlog)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.listener = sock
        self.address = sock.getsockname()[:2]

    def context(self, yield_fd: int | None = None, time_slice: float = 0.0) -> ServeContext:
        return ServeContext(
            self.app, self.config, self.multithread, self.multiprocess, self.stop, yield_fd, time_slice
        )

    def install_signal_handlers(self) -> None:
        signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        for signum in (*BASE_SIGNALS, *self.extra_signals):
            signal.signal(signum, self._on_signal)

    def reset_signals_in_child(self) -> None:
        """Runs in a freshly forked child: drop this server's wake pipe, timer and signal handling.

        The wake pipe and the handlers that write to it are the parent's: a child
        that kept them would wake the parent's loop with its own signals.
        SIGINT/SIGTERM get a no-op handler, not SIG_IGN, so that programs the app
        runs still get default signal handling; the parent decides when a child
        stops (a Ctrl-C sent to the whole process group does not cut a request short).
        """
        signal.set_wakeup_fd(-1)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum in (signal.SIGCHLD, signal.SIGALRM, signal.SIGQUIT, *self.extra_signals):
            signal.signal(signum, signal.SIG_DFL)
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda signum, frame: None)
        os.close(self._wake_read)
        os.close(self._wake_write)

    # --- the main loop ---------------------------------------------------------------------------

    def run(self, app_name: str = "") -> int:
        """Serve until a stop signal, then shut down gracefully; returns the exit status.

        Runs in the main thread.  An :class:`ImmediateExit` ends the process here
        with ``os._exit`` (after :meth:`kill_workers`); otherwise it returns 0.
        """
        if self.listener is None:
            self.bind()
        if self.config.cpu_affinity:  # before any thread or child exists: they all inherit it
            os.sched_setaffinity(0, self.config.cpu_affinity)
        self.install_signal_handlers()
        self.open_spare_fd()
        host, port = self.address
        log.info(
            "%s serving: mode=%s pid=%d bind=http://%s:%d app=%s%s",
            self.config.server_software.split()[0],
            self.mode,
            os.getpid(),
            f"[{host}]" if ":" in host else host,
            port,
            app_name or self.config.app,
            self.limits_note() + self._affinity_note(),
        )
        try:
            self.serve_forever()
            self.shutdown()
        except ImmediateExit as exc:
            self._main_thread_serving = False
            log.warning("%s", exc.reason)
            self.force_exit(exc.status)
        return 0

    def _affinity_note(self) -> str:
        cpus = self.config.cpu_affinity
        return f" cpu-affinity={','.join(map(str, cpus))}" if cpus else ""

    def limits_note(self) -> str:
        """Hook: text appended to the start-up line (e.g. `` workers=4``).  Main thread."""
        return ""

    def serve_forever(self) -> None:
        """Hook: accept connections until the stop latch is set.  Main thread; returns once stopping.

        The default accepts one connection at a time when :meth:`has_capacity`
        says so and passes it to :meth:`handle`.  A model whose loop owns every
        connection overrides this; it must still call :meth:`handle_signals`
        whenever :meth:`wait_for_wake` or its own selector wakes, and return
        once ``self.stop`` is set.
        """
        assert self.listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        selector.register(self.stop.fileno(), selectors.EVENT_READ)
        try:
            while not self.stop.is_set():
                self.handle_signals()
                if not self.has_capacity():
                    self.wait_for_wake(1.0)  # a finished thread or child wakes us; 1 s is a safety net
                    continue
                ready = {key.fd for key, _ in selector.select()}
                if self._wake_read in ready:
                    self.drain_wake_pipe()
                    self.handle_signals()
                if self.listener.fileno() in ready and not self.stop.is_set():
                    self.accept_and_handle()
        finally:
            selector.close()

    def accept_and_handle(self) -> bool:
        """Accept one waiting connection and :meth:`handle` it; False if none was waiting."""
        assert self.listener is not None
        try:
            sock, peer = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except ConnectionAbortedError:
            return True
        except OSError as exc:
            if exc.errno not in FD_EXHAUSTED:
                raise
            self.shed(exc)
            return True
        sock.setblocking(True)
        self.handle(sock, peer)
        return True

    # --- signals: handlers record, the loop acts -------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        """The only signal handler: record, wake, never log.  Runs in the main thread between bytecodes."""
        self.signals.append(signum)  # deque.append is atomic; the wakeup fd has already woken the loop
        urgent = self._urgent(signum, self._stop_signals_seen)
        if signum in STOP_SIGNALS:
            self._stop_signals_seen += 1
            if self._stop_signals_seen == 1:
                self.stop.set()  # serving code (main thread, threads, forked children) sees it at once
                if self.config.graceful_timeout > 0:
                    signal.setitimer(signal.ITIMER_REAL, self.config.graceful_timeout)
        if urgent is not None and self._main_thread_serving:
            raise urgent  # nothing else would run the loop until the request ends

    def _urgent(self, signum: int, stop_signals_before: int) -> ImmediateExit | None:
        """The exit a signal demands at once, if any; a pure function of the signal and the count."""
        if signum == signal.SIGQUIT:
            return ImmediateExit(128 + signum, "SIGQUIT: exiting now")
        if signum == signal.SIGINT and stop_signals_before:
            return ImmediateExit(128 + signum, "second SIGINT: exiting now")
        if signum in STOP_SIGNALS and not stop_signals_before and self.config.graceful_timeout == 0:
            return ImmediateExit(0, f"{signal.Signals(signum).name} with --graceful-timeout 0: exiting now")
        if signum == signal.SIGALRM and stop_signals_before:
            seconds = self.config.graceful_timeout
            return ImmediateExit(0, f"graceful timeout ({seconds:g}s) expired with work in flight: exiting")
        return None

    def handle_signals(self) -> None:
        """Act on the recorded signals, in order.  Main thread, from the loop; may raise ImmediateExit."""
        while self.signals:
            signum = self.signals.popleft()
            seen = self._stop_signals_seen_by_loop
            urgent = self._urgent(signum, seen)
            if signum in STOP_SIGNALS:
                self._stop_signals_seen_by_loop = seen + 1
            if urgent is not None:
                raise urgent
            if signum in STOP_SIGNALS:
                name = signal.Signals(signum).name
                if self.stopping:
                    log.info("%s: already shutting down", name)
                else:
                    log.info("%s: stopping gracefully", name)
                    self.stopping = True
                    self.stop.set()
            elif signum != signal.SIGALRM:
                self.on_signal(signum)

    def on_signal(self, signum: int) -> None:
        """Hook: a signal from ``extra_signals`` arrived.  Main thread, from the loop; may log and act."""

    # --- waking and waiting ----------------------------------------------------------------------

    def wake(self) -> None:
        """Wake the main loop from another thread (a connection thread finished).  Any thread."""
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop anyway
            os.write(self._wake_write, b"\0")

    def drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass

    def wait_for_wake(self, timeout: float) -> None:
        """Sleep until a signal or :meth:`wake` arrives, or ``timeout`` passes; then act on signals."""
        if select.select([self._wake_read], [], [], timeout)[0]:
            self.drain_wake_pipe()
        self.handle_signals()

    # --- shutdown --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Serve what is queued, close the listener, wait for in-flight work.  Main thread."""
        log.info(
            "shutting down: serving connections already queued, then finishing in-flight requests "
            "(up to %gs)",
            self.config.graceful_timeout,
        )
        self.finish_queued()
        if self.listener is not None:
            self.listener.close()  # stop accepting: new clients get "connection refused"
        while self.busy():
            self.wait_for_wake(0.5)  # finished work and SIGALRM (the graceful timeout) wake us
        signal.setitimer(signal.ITIMER_REAL, 0)
        log.info("stopped")

    def finish_queued(self) -> None:
        """Hook: serve every connection already waiting in the listen backlog.  Main thread.

        The default accepts until the backlog is empty (respecting
        :meth:`has_capacity`) and hands each to :meth:`handle`; the stop latch
        is set, so each gets one response with ``Connection: close``.
        """
        assert self.listener is not None
        while True:
            self.handle_signals()
            if not self.has_capacity():
                self.wait_for_wake(0.5)
                continue
            if not self.accept_and_handle():
                return

    def serve_connection(
        self, sock: socket.socket, peer: tuple, yield_fd: int | None = None, time_slice: float = 0.0
    ) -> None:
        """Serve one connection to its end, in the calling thread or process; logs any error."""
        in_main = threading.current_thread() is threading.main_thread()
        if self.yield_slice is not None and yield_fd is None and self.listener is not None:
            yield_fd, time_slice = self.listener.fileno(), self.yield_slice
        try:
            if in_main:
                self._main_thread_serving = True
            serve_connection(sock, peer, self.context(yield_fd, time_slice))
        except Exception:
            log.exception("unexpected error serving %s", peer)
            sock.close()
        finally:
            if in_main:
                self._main_thread_serving = False

    # --- hooks for the models --------------------------------------------------------------------

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        """Hook: take over an accepted, blocking socket.  Main thread; must not block for long
        unless the model serves in the main thread (single); owns ``sock`` from now on."""
        raise NotImplementedError

    def has_capacity(self) -> bool:
        """Hook: may another connection be accepted now?  Main thread; never blocks.

        When it says no, the loop sleeps until :meth:`wake` or a signal (e.g.
        SIGCHLD) -- so whatever frees capacity must cause one of them.
        """
        return True

    def busy(self) -> bool:
        """Hook: is work still in flight?  Main thread, during shutdown; never blocks."""
        return False

    def kill_workers(self) -> None:
        """Hook: forced exit -- end whatever still runs outside this process.  Main thread; must not log."""

    def force_exit(self, status: int) -> None:
        self.kill_workers()
        flush_logs()
        os._exit(status)

    # --- file descriptors ------------------------------------------------------------------------

    def open_spare_fd(self) -> None:
        """Hold one descriptor in reserve: freed, it lets ``accept()`` take and shed one client."""
        if self._spare_fd is None:
            try:
                self._spare_fd = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                self._spare_fd = None

    def shed(self, exc: OSError) -> None:
        """``accept()`` failed for want of descriptors: accept-and-close one client, never spin."""
        assert self.listener is not None
        self._shed_count += 1
        now = time.monotonic()
        if now - self._shed_logged >= SHED_LOG_INTERVAL:
            log.error(
                "accept failed: %s; shedding waiting clients until descriptors free up (%d so far)",
                exc.strerror or exc,
                self._shed_count,
            )
            self._shed_logged = now
        if self._spare_fd is None:
            self.open_spare_fd()
            self.wait_for_wake(NO_SPARE_PAUSE)
            return
        os.close(self._spare_fd)
        self._spare_fd = None
        try:
            sock, _ = self.listener.accept()
            sock.close()
        except OSError:
            pass
        self.open_spare_fd()
        if self._spare_fd is None:
            self.wait_for_wake(NO_SPARE_PAUSE)


def flush_logs() -> None:
    """Flush the error and access logs: ``os._exit`` skips the flush a normal exit does."""
    for name in ("wsgi_lab", "wsgi_lab.access"):
        for handler in logging.getLogger(name).handlers:
            handler.flush()
