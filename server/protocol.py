"""HTTP/1.1 on one client socket, spoken through h11.

h11 parses and frames; this module adds what h11 leaves to the server: the
socket I/O with timeouts, the request limits (414 / 431 / 413), the checks RFC
9112 requires of a server that h11 does not make (Content-Length together with
Transfer-Encoding, malformed request targets), ``100 Continue`` when the body
is first read, and the end-of-cycle decision: keep the connection, drain an
unread body, or close.

Nothing here knows about WSGI, threads or processes: a mode hands a socket
to :mod:`server.connection`, which drives an :class:`HTTPConnection`.
"""

from __future__ import annotations

import email.utils
import os
import re
import select
import socket
import time
from dataclasses import dataclass

import h11

from server.config import Config

RECV_SIZE = 64 * 1024
# An unread request body is drained (so the connection can be reused) only if it is small and quick.
DRAIN_MAX_BYTES = 256 * 1024
DRAIN_MAX_SECONDS = 1.0
# After an error response, how long we keep reading so the client sees the response, not a reset.
LINGER_SECONDS = 0.5

# h11 already limits a target to visible ASCII.  On top of that a target is malformed if it has
# a fragment ("#" is never sent), or a "%" that does not start a %HH escape (we decode the path).
# Stricter RFC 3986 character rules would refuse what browsers really send (e.g. "[" in queries).
ORIGIN_FORM = re.compile(rb"/(?:[^%#?]|%[0-9A-Fa-f]{2})*(?:\?[^#]*)?")
ABSOLUTE_FORM = re.compile(rb"(?i:https?)://(?P<authority>[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+)(?P<rest>.*)")


class HTTPError(Exception):
    """The client's request cannot be served: answer ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):
    """The peer closed or reset the connection, or stopped sending/reading for ``--timeout`` seconds."""


class BodyTooLarge(HTTPError):
    """Raised from ``wsgi.input`` when a chunked body grows past ``--limit-request-body``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyTimeout(HTTPError):
    """Raised from ``wsgi.input`` when the client stops sending the body for ``--timeout`` seconds."""

    def __init__(self) -> None:
        super().__init__(408, "timed out reading the request body")


@dataclass(slots=True)
class RequestHead:
    """A validated request line and header block, as bytes."""

    method: bytes
    target: bytes
    path: bytes  # path part of the target ("*" for OPTIONS *)
    query: bytes  # after "?", without it
    authority: bytes | None  # from an absolute-form target; overrides Host (RFC 9112 3.2.2)
    http_version: bytes
    headers: list[tuple[bytes, bytes]]  # lower-cased names, as h11 gives them
    content_length: int | None
    chunked: bool

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def request_line(self) -> str:
        version = self.http_version.decode()
        return f"{self.method.decode('latin-1')} {self.target.decode('latin-1')} HTTP/{version}"


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The ``Date`` header value, formatted once per second (it is on every response)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


def parse_target(method: bytes, target: bytes) -> tuple[bytes, bytes, bytes | None]:
    """Split a request target into (path, query, authority) or raise 400 (RFC 9112 section 3.2).

    origin-form ``/p?q`` for every method, absolute-form ``http://host/p?q`` (proxies
    send it; we must accept it), asterisk-form ``*`` only for OPTIONS.  CONNECT's
    authority-form is for proxies, which we are not.
    """
    if target == b"*":
        if method != b"OPTIONS":
            raise HTTPError(400, "asterisk-form target is only allowed with OPTIONS")
        return b"*", b"", None
    authority = None
    if not target.startswith(b"/"):
        absolute = ABSOLUTE_FORM.fullmatch(target)
        if absolute is None:
            raise HTTPError(400, "malformed request target")
        authority, target = absolute["authority"], absolute["rest"] or b"/"
        if target.startswith(b"?"):
            target = b"/" + target
    if method == b"CONNECT":
        raise HTTPError(400, "CONNECT needs a proxy; this is an origin server")
    if ORIGIN_FORM.fullmatch(target) is None:
        raise HTTPError(400, "malformed request target")
    path, _, query = target.partition(b"?")
    return path, query, authority


class HTTPConnection:
    """One client connection: read request heads and bodies, write responses, decide reuse.

    Blocking socket I/O with timeouts; the only "waiting for several things"
    is :meth:`next_request`, which also watches ``stop_fd`` (the server is
    shutting down) and ``yield_fd`` (another client is waiting for this worker),
    so an *idle* keep-alive connection never delays either.
    """

    def __init__(self, sock: socket.socket, config: Config) -> None:
        self.sock = sock
        self.config = config
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_head_size)
        self.head: RequestHead | None = None
        self.body_received = 0
        self.sent_100 = False
        self.bytes_sent = 0
        self.status = 0
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
        """True if our socket is readable, False if one of ``others`` is, None on timeout."""
        poller = select.poll()
        me = self.sock.fileno()
        poller.register(me, select.POLLIN)
        for fd in others:
            if fd is not None:
                poller.register(fd, select.POLLIN)
        events = poller.poll(timeout * 1000)
        if not events:
            return None
        return any(fd == me for fd, _ in events)

    def _recv_ready(self) -> bytes:
        """recv when data is most likely waiting, in one system call.

        A socket with a timeout makes Python ``poll()`` before every ``recv`` and
        ``send``.  We have just polled ourselves, so the fd (non-blocking, as every
        socket with a timeout is) is read directly; only if nothing is there after
        all does the ordinary timed ``recv`` wait.  Each system call releases and
        retakes the GIL, which the threaded mode pays for in contention.
        """
        try:
            return os.read(self.sock.fileno(), RECV_SIZE)
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
        config = self.config
        started: float | None = None
        # The start of the head, kept only to measure the request line before h11 has it all.
        prefix = self.h11.trailing_data[0][: config.limit_request_line + 2]
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise HTTPError(exc.error_status_hint, str(exc)) from None
            if event is h11.NEED_DATA:
                if len(prefix) > config.limit_request_line + 1 and b"\n" not in prefix:
                    raise HTTPError(414, f"request line longer than {config.limit_request_line} bytes")
                try:
                    if started is None:
                        if not prefix and not self._wait_for_first_byte(idle, stop_fd, yield_fd, patience):
                            return None
                        started = time.monotonic()
                        data = self._recv_head(None)
                    else:
                        # The whole head must arrive within --timeout of its first byte (no slowloris).
                        data = self._recv_head(started + config.timeout)
                except HTTPError:
                    raise
                except OSError:  # reset by the peer
                    return None
                if len(prefix) <= config.limit_request_line + 1:
                    prefix += data[: config.limit_request_line + 2 - len(prefix)]
                self.h11.receive_data(data)
            elif type(event) is h11.Request:
                self.head = self._validate(event)
                self.body_received = self.bytes_sent = self.status = 0
                self.sent_100 = False
                return self.head
            elif type(event) is h11.ConnectionClosed:
                return None
            else:  # PAUSED cannot happen here: the cycle was restarted before calling us
                raise HTTPError(400, f"unexpected {type(event).__name__}")

    def _validate(self, request: h11.Request) -> RequestHead:
        """The checks h11 leaves to us: limits, CL + TE, the target."""
        config = self.config
        line_length = len(request.method) + len(request.target) + 11  # "M T HTTP/1.1"
        if line_length > config.limit_request_line:
            raise HTTPError(414, f"request line longer than {config.limit_request_line} bytes")
        headers = list(request.headers)
        if len(headers) > config.limit_request_fields:
            raise HTTPError(431, f"more than {config.limit_request_fields} header fields")
        content_length = None
        chunked = False
        for name, value in headers:
            if len(name) + len(value) + 2 > config.limit_request_field_size:
                raise HTTPError(431, f"header field {name.decode()!r} longer than the limit")
            if name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if chunked and content_length is not None:
            # RFC 9112 6.3: a request with both is a smuggling attempt or broken; refuse and close.
            raise HTTPError(400, "both Content-Length and Transfer-Encoding")
        path, query, authority = parse_target(request.method, request.target)
        limit = config.limit_request_body
        if limit and content_length is not None and content_length > limit:
            raise HTTPError(413, f"request body larger than {limit} bytes")
        return RequestHead(
            request.method,
            request.target,
            path,
            query,
            authority,
            request.http_version,
            headers,
            content_length,
            chunked,
        )

    def read_body(self) -> bytes:
        """The next piece of the request body; b"" once it is complete.

        The first read answers ``Expect: 100-continue``: the client waits for
        it, and we send it only when the application actually wants the body.
        """
        if self.h11.they_are_waiting_for_100_continue:
            self.sent_100 = True
            self._send(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise HTTPError(exc.error_status_hint, str(exc)) from None
            if type(event) is h11.Data:
                self.body_received += len(event.data)
                limit = self.config.limit_request_body
                if limit and self.body_received > limit:
                    raise BodyTooLarge(limit)
                return bytes(event.data)
            if type(event) is h11.EndOfMessage or event is h11.PAUSED:
                return b""
            if type(event) is h11.ConnectionClosed:
                raise ClientGone("client closed the connection mid-body")
            try:
                data = self.sock.recv(RECV_SIZE)
            except TimeoutError:
                raise BodyTimeout() from None
            except OSError as exc:
                raise ClientGone(str(exc)) from None
            self.h11.receive_data(data)

    # --- writing ---------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not data:
            return
        try:
            # One write(2) usually takes it all; the timed sendall (poll + send) only for the rest.
            try:
                sent = os.write(self.sock.fileno(), data)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                self.sock.sendall(memoryview(data)[sent:])
        except OSError as exc:  # includes the timeout of a client that stopped reading
            self.h11.send_failed()
            raise ClientGone(str(exc)) from None
        self.bytes_sent += len(data)

    @staticmethod
    def _defaults(headers: list[tuple[bytes, bytes]], software: bytes) -> list[tuple[bytes, bytes]]:
        names = {name.lower() for name, _ in headers}
        extra = []
        if b"date" not in names:
            extra.append((b"Date", http_date()))
        if b"server" not in names:
            extra.append((b"Server", software))
        return [*extra, *headers]

    def send_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        first_data: bytes = b"",
        close: bool = False,
    ) -> None:
        """Send the status line, the headers and (in the same ``sendall``) the first body bytes."""
        self.status = status
        headers = self._defaults(headers, self.config.server_software.encode())
        if close:
            headers.append((b"Connection", b"close"))
        out = self.h11.send(h11.Response(status_code=status, reason=reason, headers=headers))
        if first_data and self.wants_body:
            out += self.h11.send(h11.Data(data=first_data))
        self._send(out)

    @property
    def wants_body(self) -> bool:
        """False for HEAD and for 204/304 responses, whose body h11 (rightly) refuses to send."""
        if self.h11.our_state is not h11.SEND_BODY or self.status in (204, 304):
            return False
        return self.head is None or self.head.method != b"HEAD"

    def send_data(self, data: bytes) -> None:
        if data and self.wants_body:
            try:
                self._send(self.h11.send(h11.Data(data=data)))
            except h11.LocalProtocolError as exc:  # more bytes than the app's Content-Length
                raise ResponseError(str(exc)) from None

    def end_response(self) -> None:
        try:
            self._send(self.h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as exc:  # fewer bytes than the app's Content-Length
            raise ResponseError(str(exc)) from None

    def send_error(self, status: int, message: str) -> None:
        """A small plain-text error response that closes the connection."""
        body = f"{status} {message}\n".encode("latin-1", "replace")
        headers = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode()),
        ]
        reason = _REASONS.get(status, b"Error")
        try:
            self.send_head(status, reason, headers, body, close=True)
            self.end_response()
        except (h11.LocalProtocolError, ResponseError, ClientGone):
            pass  # the client is gone or the state forbids a response: closing is all we can do

    # --- end of a request/response cycle ---------------------------------------------------------

    def start_next_cycle(self) -> bool:
        """After a complete response: True if the connection can carry another request.

        An unread request body is drained when it is small and arrives quickly;
        otherwise the connection is closed so leftover body bytes can never be
        mistaken for the next request.  A client still waiting for ``100
        Continue`` (we answered without reading) may or may not send its body,
        so that connection is closed too.
        """
        conn = self.h11
        if conn.our_state is not h11.DONE:
            return False
        if conn.their_state is h11.SEND_BODY:
            expecting = self.head is not None and any(
                n == b"expect" and v.lower() == b"100-continue" for n, v in self.head.headers
            )
            if expecting and not self.sent_100:
                return False
            if not self._drain():
                return False
        if conn.their_state is not h11.DONE:
            return False
        conn.start_next_cycle()
        self.head = None
        return True

    def _drain(self) -> bool:
        """Read and discard the rest of the request body, within small byte and time budgets."""
        deadline = time.monotonic() + DRAIN_MAX_SECONDS
        drained = 0
        timed = False
        try:
            while True:
                event = self.h11.next_event()
                if type(event) is h11.EndOfMessage:
                    return True
                if type(event) is h11.Data:
                    drained += len(event.data)
                    if drained > DRAIN_MAX_BYTES:
                        return False
                    continue
                left = deadline - time.monotonic()
                if event is not h11.NEED_DATA or left <= 0:
                    return False
                timed = True
                self.sock.settimeout(left)
                data = self.sock.recv(RECV_SIZE)
                if not data:
                    return False
                self.h11.receive_data(data)
        except (h11.RemoteProtocolError, OSError):
            return False
        finally:
            if timed:  # most bodies are already in h11's buffer: no system call at all then
                self.sock.settimeout(self.config.timeout)

    @property
    def input_pending(self) -> bool:
        """The client may have sent bytes we never read (an unread body, a broken request)."""
        return self.h11.their_state in (h11.SEND_BODY, h11.ERROR)

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


class ResponseError(Exception):
    """The application's response does not fit its own framing (e.g. wrong Content-Length)."""


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
}
