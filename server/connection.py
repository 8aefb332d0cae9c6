"""Serve one client connection over a blocking socket, request after request, until either side is done.

This is the loop every blocking mode runs -- in the main thread (single), in a
thread per connection (threaded) or in a child process per connection
(forking, prefork).  It holds :class:`HTTPConnection`, the blocking socket
driver of a :mod:`server.http` core (reads with timeouts, drain, linger),
ties it to :mod:`server.wsgi` (the app) and decides, after each response,
whether the connection lives on.

Policy choices and known limits:

- **Drain.**  An unread request body is read and discarded after the response
  only if it is small (``DRAIN_MAX_BYTES``) and quick (``DRAIN_MAX_SECONDS``);
  otherwise the connection closes, so leftover body bytes can never be taken
  for the next request.
- **Linger.**  After an error response we stop writing and read for up to
  ``LINGER_SECONDS`` before closing: closing with unread input makes the
  kernel send a reset that can destroy the response before the client reads it.
- **Yield.**  An idle keep-alive connection is dropped as soon as the server
  stops, and -- single mode and one-connection prefork workers -- after its
  time slice, as soon as another client waits on the listener.

What this module does NOT know: HTTP's rules (:mod:`server.http`), the
WSGI rules (:mod:`server.wsgi`), and how connections are shared out: it never
starts a thread or a process, and the event mode does not use it for I/O.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from server.config import Config
from server.http import new_core
from server.http.driver import CoreDriver
from server.http.errors import BodyTimeout, ClientGone, HTTPError, ResponseError
from server.http.events import NEED_DATA, RequestHead
from server.quickio import RECV_SIZE, recv_now, send_now
from server.wsgi import Response, WSGIApp, WSGIInput, build_environ, connection_environ, run_app

log = logging.getLogger("wsgi_lab")
KEEP_ALIVE_GRACE = 0.02  # seconds
access_log = logging.getLogger("wsgi_lab.access")
# An unread request body is drained (so the connection can be reused) only if it is small and quick.
DRAIN_MAX_BYTES = 256 * 1024
DRAIN_MAX_SECONDS = 1.0
# After an error response, how long we keep reading so the client sees the response, not a reset.
LINGER_SECONDS = 0.5


class Latch(Protocol):
    def is_set(self) -> bool: ...
    def fileno(self) -> int: ...


@dataclass
class ServeContext:
    """What the connection loop needs from the server that accepted the connection."""

    app: WSGIApp
    config: Config
    multithread: bool
    multiprocess: bool
    stop: Latch  # set once the server is shutting down
    yield_fd: int | None = None  # readable = another client waits for this worker (single mode)
    time_slice: float = 0.0  # with yield_fd: how long a busy keep-alive connection keeps the worker


class HTTPConnection(CoreDriver):
    """One client connection over a blocking socket: the driver of a :mod:`server.http` core for one thread.

    Blocking socket I/O with timeouts; the only "waiting for several things"
    is :meth:`next_request`, which also watches ``stop_fd`` (the server is
    shutting down) and ``yield_fd`` (another client is waiting for this worker),
    so an *idle* keep-alive connection never delays either.
    """

    def __init__(self, sock: socket.socket, config: Config) -> None:
        self.sock = sock
        self.config = config
        self.core = new_core(config)
        self.bytes_sent = 0
        self._fd = sock.fileno()
        self._pollers: dict[tuple[int | None, ...], select.poll] = {}
        sock.settimeout(config.timeout)

    # --- reading ---------------------------------------------------------------------------------

    def _wait_for_first_byte(
        self, idle: float, stop_fd: int | None, yield_fd: int | None, patience: float
    ) -> bool:
        """Wait up to ``idle`` s for the next request; False if we should close instead.

        A request that has arrived is served even when stopping (its response
        says ``Connection: close``).  A silent connection is dropped as soon as
        the server stops -- or, after ``patience`` seconds, as soon as another
        client needs this worker (``yield_fd`` readable).
        """
        remaining = idle
        if yield_fd is not None and patience > 0:
            ready = self._poll((stop_fd,), min(idle, patience))
            if ready is not None:
                return ready
            remaining = idle - patience
            if remaining <= 0:
                return False
        return bool(self._poll((stop_fd, yield_fd), remaining))

    def _poll(self, others: tuple[int | None, ...], timeout: float) -> bool | None:
        """True if our socket is readable, False if one of ``others`` is, None on timeout.

        One poll object per set of descriptors, made on first use and kept for
        the connection: a request then costs the ``poll`` call only.
        """
        poller = self._pollers.get(others)
        if poller is None:
            poller = self._pollers[others] = select.poll()
            poller.register(self._fd, select.POLLIN)
            for fd in others:
                if fd is not None:
                    poller.register(fd, select.POLLIN)
        events = poller.poll(timeout * 1000)
        if not events:
            return None
        return any(fd == self._fd for fd, _ in events)

    def _recv_ready(self) -> bytes:
        """recv when data is most likely waiting, in one system call that keeps the GIL.

        A socket with a timeout makes Python ``poll()`` before every ``recv`` and
        ``send``.  We have just polled ourselves, so the socket is read directly,
        without waiting and without letting another thread take the GIL
        (:mod:`server.quickio`); only if nothing is there after all does the
        ordinary timed ``recv`` wait.
        """
        try:
            return recv_now(self._fd)
        except BlockingIOError:
            return self.sock.recv(RECV_SIZE)

    def _recv_head(self, deadline: float | None) -> bytes:
        """recv for the request head; past the first byte it must all arrive by ``deadline``."""
        if deadline is None:  # the poll just said data is waiting
            try:
                return self._recv_ready()
            except TimeoutError:
                raise HTTPError(408, "timed out reading the request head") from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HTTPError(408, "timed out reading the request head")
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(RECV_SIZE)
        except TimeoutError:
            raise HTTPError(408, "timed out reading the request head") from None
        finally:
            self.sock.settimeout(self.config.timeout)

    def next_request(
        self, idle: float, stop_fd: int | None = None, yield_fd: int | None = None, patience: float = 0.0
    ) -> RequestHead | None:
        """Read and validate the next request head.

        Returns None when the connection should simply close: the client closed
        it, stayed idle for ``idle`` seconds, or the server is stopping.
        Raises :class:`HTTPError` for a request that must be refused.
        """
        started: float | None = None
        # Between requests the core has nothing to parse unless a pipelined request is already buffered.
        head = self.core.next_head() if self.core.head_started else NEED_DATA
        while head is NEED_DATA:
            try:
                if started is None:
                    waiting = self.core.head_started
                    if not waiting and not self._wait_for_first_byte(idle, stop_fd, yield_fd, patience):
                        return None
                    started = time.monotonic()
                    data = self._recv_head(None)
                else:
                    # The whole head must arrive within --timeout of its first byte (no slowloris).
                    data = self._recv_head(started + self.config.timeout)
            except HTTPError:
                raise
            except OSError:  # reset by the peer
                return None
            self.core.receive(data)
            head = self.core.next_head()
        if head is not None:
            self.bytes_sent = 0  # counted per request, for the access log
        return head  # type: ignore[return-value]

    def read_body(self) -> bytes:
        """The next piece of the request body; b"" once it is complete.

        The first read answers ``Expect: 100-continue``: the client waits for
        it, and we send it only when the application actually wants the body.
        """
        self._send(self.core.continue_response())
        while (data := self.core.next_body()) is NEED_DATA:
            try:
                received = self.sock.recv(RECV_SIZE)
            except TimeoutError:
                raise BodyTimeout() from None
            except OSError as exc:
                raise ClientGone(str(exc)) from None
            self.core.receive(received)
        return data  # type: ignore[return-value]

    # --- writing ---------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not data:
            return
        try:
            # One send usually takes it all, keeping the GIL (server.quickio); the timed sendall
            # (poll + send) only for the rest.
            sent = send_now(self._fd, data)
            if sent < len(data):
                self.sock.sendall(memoryview(data)[sent:])
        except OSError as exc:  # includes the timeout of a client that stopped reading
            self.core.send_failed()
            raise ClientGone(str(exc)) from None
        self.bytes_sent += len(data)

    # --- end of a request/response cycle ---------------------------------------------------------

    def start_next_cycle(self) -> bool:
        """After a complete response: True if the connection can carry another request.

        An unread request body is drained when it is small and arrives quickly;
        otherwise the connection is closed so leftover body bytes can never be
        mistaken for the next request.  A client still waiting for ``100
        Continue`` (we answered without reading) may or may not send its body,
        so that connection is closed too.
        """
        core = self.core
        if not core.response_done:
            return False
        if core.body_unread and (core.body_may_never_come or not self._drain()):
            return False
        return core.start_next_cycle()

    def _drain(self) -> bool:
        """Read and discard the rest of the request body, within small byte and time budgets."""
        deadline = time.monotonic() + DRAIN_MAX_SECONDS
        timed = False
        try:
            while (done := self.core.discard_body(DRAIN_MAX_BYTES)) is NEED_DATA:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                timed = True
                self.sock.settimeout(left)
                data = self.sock.recv(RECV_SIZE)
                if not data:
                    return False
                self.core.receive(data)
            return bool(done)
        except OSError:
            return False
        finally:
            if timed:  # most bodies are already in the core's buffer: no system call at all then
                self.sock.settimeout(self.config.timeout)

    def close(self, linger: bool = False) -> None:
        """Close the socket; with ``linger``, read briefly first so an error response is not lost.

        Closing a socket with unread input makes the kernel send a reset,
        which can destroy the response we just sent before the client reads it.
        """
        sock = self.sock
        try:
            if linger:
                sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + LINGER_SECONDS
                received = 0
                while received < DRAIN_MAX_BYTES and (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    data = sock.recv(RECV_SIZE)
                    if not data:
                        break
                    received += len(data)
        except OSError:
            pass
        finally:
            sock.close()


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def serve_connection(sock: socket.socket, peer: tuple, ctx: ServeContext) -> None:
    """Serve ``sock`` until the client closes, an idle timeout, an error, or shutdown."""
    config = ctx.config
    with contextlib.suppress(OSError):  # small responses go out at once, not after a Nagle delay
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    http = HTTPConnection(sock, config)
    base = connection_environ(
        sock.getsockname(), peer, config.server_software, ctx.multithread, ctx.multiprocess
    )
    remote = f"{peer[0]}:{peer[1]}" if peer else "-"

    connected = time.monotonic()

    def close_after() -> bool:
        """Should this response be the last on the connection?  Asked when its head is sent.

        Yes when keep-alive is off or the server is stopping -- and, in single mode,
        when this connection has had its time slice and another client is waiting.
        """
        if not config.keep_alive or ctx.stop.is_set():
            return True
        if ctx.yield_fd is None or time.monotonic() - connected < ctx.time_slice:
            return False
        return _readable(ctx.yield_fd)

    # The first request may take --timeout to start and is served whoever else waits;
    # later ones get --keep-alive seconds, and give way (single mode) to a waiting client.
    idle, yield_fd = config.timeout, None
    try:
        while True:
            try:
                # Within its time slice a connection may keep the worker while its client thinks;
                # a client promised keep-alive gets at least a short grace to send its next request.
                patience = max(KEEP_ALIVE_GRACE, ctx.time_slice - (time.monotonic() - connected))
                head = http.next_request(idle, ctx.stop.fileno(), yield_fd, patience)
            except HTTPError as exc:
                log.info("%s: %d %s", remote, exc.status, exc.reason)
                http.send_error(exc.status, exc.reason)
                log_access(remote, "-", exc.status, http.bytes_sent, 0.0)
                http.close(linger=True)
                return
            if head is None:
                http.close()
                return
            if not serve_request(http, head, base, ctx, remote, close_after) or not http.start_next_cycle():
                http.close(linger=http.input_pending)
                return
            idle, yield_fd = config.keep_alive, ctx.yield_fd
    except ClientGone as exc:
        log.debug("%s: client gone: %s", remote, exc)
        http.close()


def serve_request(
    http: CoreDriver, head: RequestHead, base: dict, ctx: ServeContext, remote: str, close_after
) -> bool:
    """Run the app for one request; False if the connection must close afterwards."""
    started = time.perf_counter()
    wsgi_input = WSGIInput(http.read_body if head.has_body else None)
    environ = build_environ(base, head, wsgi_input)
    response = Response(http, close_after, wsgi_input)
    keep = True
    try:
        run_app(ctx.app, environ, response)
    except ClientGone as exc:
        log.info("%s: client went away during %s: %s", remote, head.request_line, exc)
        keep = False
    except Exception as exc:
        keep = False
        if response.headers_sent:
            # The status line is out: the only honest signal left is an incomplete response.
            if isinstance(exc, ResponseError):
                log.error("%s: bad response framing for %s: %s", remote, head.request_line, exc)
            else:
                log.exception("%s: error after the response started (%s); closing", remote, head.request_line)
        elif isinstance(exc, HTTPError):  # from wsgi.input: body too large / too slow / malformed
            log.info("%s: %d %s", remote, exc.status, exc.reason)
            http.send_error(exc.status, exc.reason)
            response.status = exc.status
        else:
            log.exception("%s: error in the application for %s", remote, head.request_line)
            http.send_error(500, "Internal Server Error")
            response.status = 500
    if access_log.handlers:
        log_access(remote, head.request_line, response.status, http.bytes_sent, time.perf_counter() - started)
    return keep


def log_access(remote: str, request_line: str, status: int, sent: int, seconds: float) -> None:
    """One line per request, with the pid and thread that served it."""
    if access_log.handlers:
        access_log.info(
            '%s "%s" %s %d %.1fms pid=%d thread=%s',
            remote,
            request_line,
            status or "-",
            sent,
            seconds * 1000,
            os.getpid(),
            threading.current_thread().name,
        )
