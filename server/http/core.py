"""Our connection core: llhttp (through httptools) parses a request head, our state machine decides the rest.

``--parser auto|httptools``.  It decides, in h11's terms so that both cores are
one server: the request/response cycle, keep-alive, Content-Length bodies in,
Content-Length / chunked / close-delimited framing out (none for HEAD, 204,
304), ``100 Continue``, pipelining.  A response head is one join of a cached
status line, the framing fields, a per-second ``Date`` line and checked fields.

- A head it does not take as plainly valid (llhttp's errors, a request line
  outside h11's grammar, a policy refusal, no ``Host`` in HTTP/1.1, any
  ``Transfer-Encoding``) hands the connection, from that head on, to the
  reference core: this object becomes an :class:`H11Core` (a one-way
  ``__class__`` switch at a cycle's start), so no call pays a branch for it.
- Response framing fields: Content-Length only (:mod:`server.wsgi` refuses the others).

What it does NOT know: sockets, timeouts, WSGI, threads or processes.
"""

from __future__ import annotations

from enum import IntEnum

from server.config import Config
from server.http import grammar, policy, writer
from server.http.errors import HTTPError, ResponseError
from server.http.events import NEED_DATA, NeedData, RequestHead
from server.http.reference import H11Core

try:
    import httptools
except ImportError:  # then Config.parser_in_use is h11 and this core is never made
    httptools = None

_PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade) if httptools else ()
_CONTINUE = b"HTTP/1.1 100 \r\n\r\n"  # h11's InformationalResponse(status_code=100), reason empty


class Side(IntEnum):
    """Where our side of the cycle is (h11's names)."""

    IDLE = 0  # no response started
    SEND_BODY = 1  # the head is out
    DONE = 2  # the response is complete
    ERROR = 3  # a send failed or the response broke its own framing


class Framing(IntEnum):
    """How the response body is delimited."""

    NONE = 0  # HEAD, 204, 304: no body at all
    LENGTH = 1  # Content-Length
    CHUNKED = 2  # Transfer-Encoding: chunked (HTTP/1.1, no Content-Length)
    CLOSE = 3  # until the connection closes (HTTP/1.0, no Content-Length)


class LlhttpCore:
    """One connection's HTTP/1.1 over llhttp: the same calls and answers as :class:`H11Core`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._server_line = b"Server: %s\r\n" % config.server_software.encode()
        self.buffer = bytearray()
        self.closed = False
        self._fields: list[tuple[bytes, bytes]] = []
        self._parser = httptools.HttpRequestParser(self)
        self._new_cycle()

    def _new_cycle(self) -> None:
        """The state of one request/response cycle, reset at its start."""
        self.head: RequestHead | None = None
        self._method = b""
        self.length = self.remaining = 0  # the request's Content-Length, and its bytes still to come
        # The body's end was read (h11's EndOfMessage): at the head for no body, else when next_body
        # answers b"" -- not with its last bytes, so a drain stopped there leaves the client unfinished.
        self._body_done = False
        self.sent_100 = False
        self._waiting_100 = False  # the client asked for 100 Continue and has sent no body yet
        self._keep_alive = True
        self._http11 = True
        self.status = 0
        self._ours = Side.IDLE
        self._framing = Framing.NONE
        self._left = 0  # Content-Length bytes of the response still to send

    def on_header(self, name: bytes, value: bytes) -> None:
        """llhttp's callback; it strips the OWS before a value, we the OWS after it (as h11 does)."""
        self._fields.append((name.lower(), value.rstrip(b" \t")))

    # --- input -----------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means the client closed its side."""
        if data:
            self.buffer += data
        else:
            self.closed = True

    @property
    def head_started(self) -> bool:
        """Some bytes of the next request head are already here (e.g. a pipelined request)."""
        return bool(self.buffer)

    def next_head(self) -> RequestHead | type[NeedData] | None:
        """The next validated request head, NEED_DATA, or None if the client closed between requests.

        Raises :class:`HTTPError` for a request that must be refused (through the reference core).
        """
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return self._incomplete()
        line = grammar.REQUEST_LINE.match(buffer)
        if line is None:
            return self._hand_over()
        raw = bytes(buffer[: end + 4])
        self._fields = fields = []
        try:
            self._parser.feed_data(raw)
        except _PARSER_ERRORS:
            return self._hand_over()
        method, target, version = line.groups()
        host = False
        for name, value in fields:
            if name == b"host":
                host = True
            elif name == b"transfer-encoding":
                return self._hand_over()  # a chunked body (or h11's 501 / our 400) is the reference's
            elif name == b"connection" and b"close" in _tokens(value):
                self._keep_alive = False
        if not host and version == b"1.1":
            return self._hand_over()  # h11's "Missing mandatory Host: header"
        try:
            policy.check_raw_head(raw, self.config)
            head = policy.validate(method, target, version, fields, self.config)
        except HTTPError:
            return self._hand_over()
        del buffer[: end + 4]
        self.head = head
        self._method = method
        self.length = self.remaining = head.content_length or 0
        self._body_done = not self.remaining
        self._http11 = version == b"1.1"
        if not self._http11:
            self._keep_alive = False  # h11 keeps no HTTP/1.0 connection alive
        elif self.remaining:
            self._waiting_100 = any(n == b"expect" and b"100-continue" in _tokens(v) for n, v in fields)
        return head

    def _incomplete(self) -> type[NeedData] | None:
        """No CRLF CRLF yet: wait, unless h11 would already end the head or refuse it (then hand over)."""
        buffer = self.buffer
        if self.closed:
            return self._hand_over() if buffer else None
        if not buffer:
            return NEED_DATA
        if (
            buffer[0] < 0x21  # h11: "illegal request line" before the line is complete
            or b"\n\n" in buffer  # h11 also ends a head at a bare LF's blank line
            or b"\n\r\n" in buffer
            or len(buffer) > self.config.max_head_size  # h11's 431 for a head that never ends
            or policy.line_too_long(buffer, self.config.limit_request_line)
        ):
            return self._hand_over()
        return NEED_DATA

    def _hand_over(self):
        """From this head on the reference core reads the connection; this object becomes one."""
        data, closed, config = bytes(self.buffer), self.closed, self.config
        self.__dict__.clear()
        self.__class__ = H11Core
        H11Core.__init__(self, config)  # type: ignore[misc]
        self.receive(data)
        if closed:
            self.receive(b"")
        return self.next_head()

    def continue_response(self) -> bytes:
        """``100 Continue`` if the client is waiting for it before sending its body, else b""."""
        if not self._waiting_100:
            return b""
        self._waiting_100 = False
        self.sent_100 = True
        return _CONTINUE

    def next_body(self) -> bytes | type[NeedData]:
        """The next piece of the request body, b"" once it is complete, or NEED_DATA.

        Raises :class:`HTTPError` (h11's words) if the client closed mid-body.
        """
        remaining = self.remaining
        if not remaining:
            self._body_done = True
            return b""
        buffer = self.buffer
        if not buffer:
            if self.closed:
                raise HTTPError(
                    400,
                    "peer closed connection without sending complete message body "
                    f"(received {self.length - remaining} bytes, expected {self.length})",
                )
            return NEED_DATA
        piece = bytes(buffer[:remaining])
        del buffer[: len(piece)]
        self.remaining = remaining - len(piece)
        self._waiting_100 = False
        self._parser.feed_data(piece)  # llhttp counts the body too: it is ready for the next head
        return piece

    # --- output ----------------------------------------------------------------------------------

    def response_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        first_data: bytes = b"",
        close: bool = False,
    ) -> bytes:
        """The status line and headers (plus the first body bytes, so they can go out in one write)."""
        if self._ours is not Side.IDLE:
            self._ours = Side.ERROR
            raise ResponseError("a response is already under way")
        try:
            out = self._head(status, reason, headers, close)
        except ResponseError:
            self._ours = Side.ERROR
            raise
        self._ours = Side.SEND_BODY
        self._waiting_100 = False  # h11: a response ends the wait
        if first_data:
            out += self.response_data(first_data)
        return out

    def _head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], close: bool) -> bytes:
        """The head, framed as h11 frames it (its order of fields too)."""
        framing: list[bytes] = []
        lines: list[bytes] = []
        named: set[bytes] = set()
        length: bytes | None = None
        for name, value in headers:
            lower = name.lower()
            named.add(lower)
            if lower == b"content-length":  # h11 keeps the first, stripped, and drops equal repeats
                if length is None:
                    length = _content_length(name, value)
                    framing.append(b"%s: %s\r\n" % (name, length))
                elif _content_length(name, value) != length:
                    raise ResponseError("conflicting Content-Length headers")
            elif lower in writer.FRAMING_FIELDS:
                raise ResponseError(f"{name.decode('latin-1')} is the server's business (PEP 3333)")
            else:
                lines.append(b"%s: %s\r\n" % (name, value))
        writer.check_lines(lines)
        line = writer.status_line(status, reason)
        self.status = status
        if close:
            framing.append(b"Connection: close\r\n")
        head = self._method == b"HEAD"
        need_close = False
        if status in (204, 304) or head:
            self._framing = Framing.NONE
        elif length is not None:
            self._framing = Framing.LENGTH
            self._left = int(length)
        elif self._http11:
            self._framing = Framing.CHUNKED
        else:
            self._framing = Framing.CLOSE
            need_close = True
        if length is None and status not in (204, 304):  # h11 frames HEAD's head as GET's
            if self._http11:
                framing.append(b"Transfer-Encoding: chunked\r\n")
            else:
                need_close = need_close or not head
        if not self._keep_alive or need_close:
            if close:
                framing.remove(b"Connection: close\r\n")
            framing.append(b"Connection: close\r\n")
        self._keep_alive = self._keep_alive and not close and not need_close
        if b"server" not in named:
            lines.insert(0, self._server_line)
        if b"date" not in named:
            lines.insert(0, writer.date_line())
        return b"".join((line, *framing, *lines, b"\r\n"))

    @property
    def wants_body(self) -> bool:
        """False for HEAD and for 204/304 responses, which have no body."""
        return self._ours is Side.SEND_BODY and self._framing is not Framing.NONE

    def response_data(self, data: bytes) -> bytes:
        if not data or not self.wants_body:
            return b""
        framing = self._framing
        if framing is Framing.LENGTH:
            if len(data) > self._left:
                self._ours = Side.ERROR
                raise ResponseError("Too much data for declared Content-Length")
            self._left -= len(data)
            return data
        if framing is Framing.CHUNKED:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def response_end(self) -> bytes:
        if self._ours is not Side.SEND_BODY:
            self._ours = Side.ERROR
            raise ResponseError("no response under way to end")
        if self._framing is Framing.LENGTH and self._left:
            self._ours = Side.ERROR
            raise ResponseError("Too little data for declared Content-Length")
        self._ours = Side.DONE
        return b"0\r\n\r\n" if self._framing is Framing.CHUNKED else b""

    def error_response(self, status: int, message: str) -> bytes:
        """A complete small plain-text error response that closes the connection (b"" if none can be sent)."""
        body, headers = writer.error_body(status, message)
        reason = writer.REASONS.get(status, b"Error")
        try:
            return self.response_head(status, reason, headers, body, close=True) + self.response_end()
        except ResponseError:
            return b""  # the state forbids a response (one is already under way): closing is all we can do

    def send_failed(self) -> None:
        """The driver could not write: nothing more can be sent on this connection."""
        self._ours = Side.ERROR

    # --- end of a request/response cycle ---------------------------------------------------------

    @property
    def response_done(self) -> bool:
        """The response is complete and the connection may carry another (h11's DONE, not MUST_CLOSE)."""
        return self._ours is Side.DONE and self._keep_alive

    @property
    def body_unread(self) -> bool:
        """The response is done but the client is still (or may still be) sending the request body."""
        return self.head is not None and not self._body_done

    @property
    def body_may_never_come(self) -> bool:
        """The client asked for ``100 Continue`` and never got it: it may or may not send its body."""
        expecting = self.head is not None and any(
            n == b"expect" and v.lower() == b"100-continue" for n, v in self.head.headers
        )
        return expecting and not self.sent_100

    def discard_body(self, budget: int) -> bool | type[NeedData]:
        """Skip buffered body bytes: True at its end, False past ``budget`` bytes or on a broken body."""
        drained = 0
        try:
            while (piece := self.next_body()) != b"":
                if piece is NEED_DATA:
                    return NEED_DATA
                drained += len(piece)
                if drained > budget:
                    return False
        except HTTPError:
            return False
        return True

    def start_next_cycle(self) -> bool:
        """True, with the state reset for the next request, if both sides finished this one cleanly."""
        if not self.response_done or not self._body_done:
            return False
        self._new_cycle()
        return True

    @property
    def input_pending(self) -> bool:
        """The client may have sent bytes we never read (an unread body)."""
        return self.body_unread

    @property
    def input_buffered(self) -> bool:
        """Bytes (or the end of input) past the current request are already received, unparsed."""
        return bool(self.buffer) or self.closed


def _tokens(value: bytes) -> list[bytes]:
    """A comma-separated field value's elements, lower-cased (RFC 9110 5.6.1)."""
    return [token.strip(b" \t").lower() for token in value.split(b",")]


def _content_length(name: bytes, value: bytes) -> bytes:
    """A response Content-Length's digits as h11 keeps them (equal values in a list are one)."""
    if value.isdigit() and value.isascii():
        return value
    writer.check_lines([b"%s: %s\r\n" % (name, value)])
    lengths = {length.strip() for length in value.split(b",")}
    if len(lengths) != 1 or not grammar.DECIMAL.fullmatch(next(iter(lengths))):
        raise ResponseError(f"bad Content-Length {value[:40]!r}")
    return lengths.pop()
