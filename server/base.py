"""What every mode shares: the listening socket, the accept loop, signals, graceful shutdown.

A mode (see :mod:`server.modes`) fills in four hooks -- ``handle`` (what to do
with an accepted connection), ``wait_for_capacity`` (back-pressure before the
next accept), ``on_wake`` (a signal arrived, e.g. SIGCHLD) and ``drain`` (wait
for in-flight work at shutdown) -- in the style of the stdlib's socketserver.

Shutdown: the first SIGTERM/SIGINT sets the stop latch (a pipe, so threads
*and* forked children see it), the accept loop ends, the listener closes,
in-flight requests finish while idle keep-alive connections close, and a
SIGALRM watchdog bounds the wait at ``--graceful-timeout``.  A second SIGINT
exits at once.
"""

from __future__ import annotations

import logging
import os
import select
import selectors
import signal
import socket
from typing import ClassVar

from server.config import Config
from server.connection import ServeContext, serve_connection
from server.wsgi import WSGIApp

log = logging.getLogger("wsgi_lab")


class StopLatch:
    """A flag that, once set, stays set -- and can be waited on with poll/select.

    It is a pipe written once: every thread selects on the read end, and a
    forked child inherits it, so the parent's ``set()`` reaches the children too.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self._set = False
        self._owner = os.getpid()

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        if not self._set and os.getpid() != self._owner and select.select([self._read], [], [], 0)[0]:
            self._set = True  # set by the parent of this (forked) process
        return self._set

    def fileno(self) -> int:
        return self._read


class BaseServer:
    """Bind, accept, hand each connection to :meth:`handle`; stop cleanly on a signal."""

    mode: ClassVar[str] = ""
    multithread: ClassVar[bool] = False
    multiprocess: ClassVar[bool] = False

    def __init__(self, app: WSGIApp, config: Config) -> None:
        self.app = app
        self.config = config
        self.stop = StopLatch()
        self.listener: socket.socket | None = None
        self.address: tuple[str, int] = config.bind
        # Signal handlers write to this pipe (signal.set_wakeup_fd) so the accept loop wakes up.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

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
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGALRM, self._on_graceful_timeout)

    # --- the main loop ---------------------------------------------------------------------------

    def run(self, app_name: str = "") -> int:
        """Serve until a stop signal, then shut down gracefully; returns the exit status."""
        if self.listener is None:
            self.bind()
        self.install_signal_handlers()
        host, port = self.address
        log.info(
            "%s serving: mode=%s pid=%d bind=http://%s:%d app=%s%s",
            self.config.server_software.split()[0],
            self.mode,
            os.getpid(),
            f"[{host}]" if ":" in host else host,
            port,
            app_name or self.config.app,
            self.limits_note(),
        )
        self.serve_forever()
        self.shutdown()
        return 0

    def limits_note(self) -> str:
        return ""

    def serve_forever(self) -> None:
        assert self.listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        try:
            while not self.stop.is_set():
                if not self.wait_for_capacity():
                    continue
                ready = {key.fd for key, _ in selector.select()}
                if self._wake_read in ready:
                    self.drain_wake_pipe()
                    self.on_wake()
                if self.listener.fileno() in ready and not self.stop.is_set():
                    try:
                        sock, peer = self.listener.accept()
                    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                        continue
                    sock.setblocking(True)
                    self.handle(sock, peer)
        finally:
            selector.close()

    def drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass

    def wait_for_wake(self, timeout: float) -> None:
        """Sleep until a signal arrives (SIGCHLD, SIGTERM ...) or ``timeout`` passes."""
        if select.select([self._wake_read], [], [], timeout)[0]:
            self.drain_wake_pipe()

    def shutdown(self) -> None:
        if self.listener is not None:
            self.listener.close()  # stop accepting: new clients get "connection refused"
        log.info("shutting down: finishing in-flight requests (up to %gs)", self.config.graceful_timeout)
        self.drain()
        signal.setitimer(signal.ITIMER_REAL, 0)
        log.info("stopped")

    def serve_connection(
        self, sock: socket.socket, peer: tuple, yield_fd: int | None = None, time_slice: float = 0.0
    ) -> None:
        try:
            serve_connection(sock, peer, self.context(yield_fd, time_slice))
        except Exception:
            log.exception("unexpected error serving %s", peer)
            sock.close()

    # --- hooks for the modes ---------------------------------------------------------------------

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        raise NotImplementedError

    def wait_for_capacity(self) -> bool:
        """Block until another connection may be accepted; False to re-check the stop latch."""
        return True

    def on_wake(self) -> None:
        """A signal woke the accept loop."""

    def drain(self) -> None:
        """Wait for in-flight connections to finish (the watchdog bounds the wait)."""

    def kill_workers(self) -> None:
        """Forced exit: end whatever still runs outside this process."""

    # --- signals ---------------------------------------------------------------------------------

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            if signum == signal.SIGINT:
                log.warning("second SIGINT: exiting now")
                self.force_exit(128 + signum)
            log.info("%s: already shutting down", name)
            return
        log.info("%s: stopping gracefully", name)
        self.stop.set()
        if self.config.graceful_timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, self.config.graceful_timeout)
        else:
            self.force_exit(0)

    def _on_graceful_timeout(self, signum: int, frame: object) -> None:
        log.warning(
            "graceful timeout (%gs) expired with work in flight: exiting", self.config.graceful_timeout
        )
        self.force_exit(0)

    def force_exit(self, status: int) -> None:
        self.kill_workers()
        flush_logs()
        os._exit(status)


def flush_logs() -> None:
    """Flush the error and access logs: ``os._exit`` skips the flush a normal exit does."""
    for name in ("wsgi_lab", "wsgi_lab.access"):
        for handler in logging.getLogger(name).handlers:
            handler.flush()
