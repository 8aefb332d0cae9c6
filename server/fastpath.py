"""HTTPCore's fast path: request heads parsed by llhttp (C, through httptools), turned into h11's own events.

h11 stays the reference parser and the connection's state machine.  This reads
a request head with httptools and gives back the ``h11.Request`` h11 would have
produced -- only when it can tell h11 would have produced exactly that: the head
ends with CRLF CRLF, its request line matches h11's grammar with version 1.0 or
1.1, and h11's own ``Request`` accepts the fields.  Everything else (llhttp's
errors, methods llhttp does not know, HTTP/2.0, double spaces, a head past a
limit, a client gone mid-head) is *handed over*: the bytes go to h11 and the
connection stays on the reference path, so a refusal is never llhttp's.
A Content-Length body is counted off here (and fed to llhttp, which frames it too).

What it does NOT know: the policy (:mod:`server.protocol` applies it to what
comes out of here as to h11's events), sockets, threads.
"""

from __future__ import annotations

import re
from typing import Final

import h11

try:
    import httptools
except ImportError:  # then every connection runs on h11 (the CLI says so at start)
    httptools = None

AVAILABLE = httptools is not None


class HandOver:
    """Sentinel: give this request (and the rest of the connection) to h11."""


HAND_OVER: Final = HandOver
NEED_DATA = h11.NEED_DATA
_PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade) if httptools else ()
# h11's request line (RFC 9112 3): token SP visible-ASCII SP HTTP/D.D -- restricted to the versions
# we serve, so HTTP/2.0 (which llhttp takes) goes to h11 and its 505.
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/(1\.[01])\r\n")


class FastPath:
    """One connection's request bytes while they are read by llhttp; see the module docstring."""

    def __init__(self, limit_request_line: int, max_head_size: int) -> None:
        self.buffer = bytearray()
        self.closed = False
        self.length = 0  # the current request's Content-Length
        self.remaining = 0  # its bytes still to come
        self._limit_line = limit_request_line
        self._max_head = max_head_size
        self._fields: list[tuple[bytes, bytes]] = []
        self._parser = httptools.HttpRequestParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        """llhttp's callback; it strips the OWS before a value, h11 also the OWS after it."""
        self._fields.append((name, value.rstrip(b" \t")))

    def receive(self, data: bytes) -> None:
        if data:
            self.buffer += data
        else:
            self.closed = True

    def next_request(self) -> tuple[h11.Request, bytes] | type[NEED_DATA] | type[HandOver] | None:
        """(the request, its raw head) | NEED_DATA | HAND_OVER | None (closed between requests).

        The head stays in the buffer until :meth:`accept`: the policy may still
        refuse it, and then h11 reads it from the start.
        """
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return self._incomplete()
        line = _REQUEST_LINE.match(buffer)
        if line is None:
            return HAND_OVER
        raw = bytes(buffer[: end + 4])
        self._fields = []
        try:
            self._parser.feed_data(raw)
            request = h11.Request(
                method=line[1], target=line[2], http_version=line[3], headers=self._fields, _parsed=True
            )
        except (*_PARSER_ERRORS, h11.LocalProtocolError):
            return HAND_OVER
        return request, raw

    def _incomplete(self) -> type[NEED_DATA] | type[HandOver] | None:
        """No CRLF CRLF yet: wait, unless h11 would already end the head or refuse it (then hand over)."""
        buffer = self.buffer
        if self.closed:
            return HAND_OVER if buffer else None
        if not buffer:
            return NEED_DATA
        limit = self._limit_line
        if (
            buffer[0] < 0x21  # h11: "illegal request line" before the line is complete
            or b"\n\n" in buffer  # h11 also ends a head at a bare LF's blank line
            or b"\n\r\n" in buffer
            or len(buffer) > self._max_head  # h11's 431 for a head that never ends
            or (len(buffer) > limit + 1 and buffer.find(b"\n", 0, limit + 2) < 0)  # the core's 414
        ):
            return HAND_OVER
        return NEED_DATA

    def accept(self, head_size: int, content_length: int) -> None:
        """The policy took the head: drop it from the buffer; ``content_length`` body bytes follow."""
        del self.buffer[:head_size]
        self.length = self.remaining = content_length

    def body_piece(self) -> bytes | type[NEED_DATA]:
        """The next piece of the Content-Length body, b"" at its end, or NEED_DATA.

        Raises ``h11.RemoteProtocolError`` with h11's words if the client closed mid-body.
        """
        remaining = self.remaining
        if not remaining:
            return b""
        buffer = self.buffer
        if not buffer:
            if self.closed:
                raise h11.RemoteProtocolError(
                    "peer closed connection without sending complete message body "
                    f"(received {self.length - remaining} bytes, expected {self.length})"
                )
            return NEED_DATA
        piece = bytes(buffer[:remaining])
        del buffer[: len(piece)]
        self.remaining = remaining - len(piece)
        self._parser.feed_data(piece)  # llhttp counts the body too: it is ready for the next head
        return piece
