"""Serve one client connection, request after request, until either side is done.

This is the loop every mode runs -- in the main thread (single), in a thread
per connection (threaded) or in a child process per connection (forking).  It
ties :mod:`server.protocol` (HTTP) to :mod:`server.wsgi` (the app) and decides,
after each response, whether the connection lives on.  It never starts a
thread or a process itself.
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
from server.protocol import ClientGone, CoreDriver, HTTPConnection, HTTPError, RequestHead, ResponseError
from server.wsgi import Response, WSGIApp, WSGIInput, build_environ, connection_environ, run_app

log = logging.getLogger("wsgi_lab")
KEEP_ALIVE_GRACE = 0.02  # seconds
access_log = logging.getLogger("wsgi_lab.access")


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
