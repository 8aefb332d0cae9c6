"""The reference core: HTTP/1.1 for one connection through h11's parser and state machine, sans-IO.

``--parser h11``, the readable reference the differential test holds our own
core (:mod:`server.http.core`) to, and where that core hands a connection it
will not read itself (an unusual head, a chunked body).  It adds what h11
leaves to a server: :mod:`server.http.policy`'s checks -- where h11's parsed
events hide what was sent, on the raw bytes h11 accepted (a check beside h11,
never a second parser) -- ``100 Continue`` and the end-of-cycle bookkeeping.
Only h11's public API is used.

What it does NOT know: sockets, timeouts and the clock (beyond ``Date``), WSGI,
threads or processes.
"""

from __future__ import annotations

import logging

import h11

from server.config import Config
from server.http import grammar, policy, writer
from server.http.errors import REASON_MAX_CHARS, BodyTooLarge, ClientGone, HTTPError, ResponseError
from server.http.events import NEED_DATA, NeedData, RequestHead

log = logging.getLogger("wsgi_lab")
# h11's events are immutable: every response ends with this one (building it checks its empty trailers).
_END_OF_MESSAGE = h11.EndOfMessage()


class _ChunkLines:
    """Checks each chunk-size line and the trailer block of a chunked body, as sent, alongside h11.

    h11 decides the framing; this keeps a copy of the body bytes it has not yet
    reported and, at each position where h11 has just read a chunk-size line
    (the start of the body, after each chunk's data and CRLF), checks that line.
    """

    def __init__(self, buffered: bytes) -> None:
        self.raw = bytearray(buffered)
        self.at_line = True  # the next bytes are a chunk-size line (after ``skip`` bytes of CRLF)
        self.skip = 0

    def feed(self, data: bytes) -> None:
        self.raw += data

    def _check_line(self) -> int:
        """Check the chunk-size line h11 has consumed; return where it ends."""
        end = self.raw.find(b"\r\n", self.skip) + 2
        if not grammar.CHUNK_LINE.fullmatch(self.raw, self.skip, end):
            line = bytes(self.raw[self.skip : end])
            raise HTTPError(400, f"malformed chunk-size line {line[:40]!r} (RFC 9112 7.1)")
        return end

    def data(self, event: h11.Data) -> None:
        position = self._check_line() if self.at_line else self.skip
        del self.raw[: position + len(event.data)]
        self.at_line = event.chunk_end
        self.skip = 2 if event.chunk_end else 0

    def end(self, trailers: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Check the trailer block; return the names of the fields to discard (RFC 9110 6.5.1)."""
        position = self._check_line() if self.at_line else self.skip
        block = self.raw[position:]
        if block[:2] != b"\r\n":  # there are trailer lines (or a bare LF ends the body)
            end = grammar.BLOCK_END.search(block)
            stop = end.end() if end is not None and block[:1] != b"\n" else 1
            if fault := grammar.HEAD_FAULT.search(block, 0, stop):
                raise HTTPError(400, "in the trailers: " + policy.fault_reason(fault[0]))
        for name, _ in trailers:
            if name in policy.TRAILER_REFUSED:
                raise HTTPError(400, f"{name.decode()} is not allowed in trailers (RFC 9110 6.5.1)")
        return [name for name, _ in trailers if name in policy.TRAILER_DISCARDED]


class H11Core:
    """HTTP/1.1 for one connection through h11: bytes in, validated requests out; responses in, bytes out.

    This is h11 plus what h11 leaves to a server: the request limits, the
    checks RFC 9112 asks of a server on top of h11's parsing, ``100 Continue``
    and the end-of-cycle bookkeeping.  It never blocks and never touches a
    socket, so two very different drivers share it: :class:`server.connection.HTTPConnection`
    (blocking reads with timeouts, one connection per thread or process) and
    the event mode's loop (non-blocking, every connection in one thread).  It
    is also the place to test a protocol rule directly -- bytes in, status out::

        core = H11Core(Config())
        core.receive(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        head = core.next_head()        # a RequestHead, NEED_DATA, None, or raises HTTPError

    Timeouts are the driver's business: only it knows what time it is.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._software = config.server_software.encode()
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_head_size)
        self.head: RequestHead | None = None
        # The method h11 parsed, even for a request we then refuse: a HEAD gets no error body either.
        self._method = b""
        self.body_received = 0
        self.sent_100 = False
        self.status = 0
        # The current head as sent (up to one byte past the limit), for the checks h11's parsed fields
        # cannot show, and how many bytes were fed since it started (to find where h11 ended it).
        self._head_raw = bytearray()
        self._head_fed = 0
        self._chunks: _ChunkLines | None = None

    # --- input -----------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means the client closed its side."""
        if self.head is None:
            room = self.config.max_head_size + 1 - len(self._head_raw)
            if room > 0:
                self._head_raw += data[:room]
            self._head_fed += len(data)
        elif self._chunks is not None:
            self._chunks.feed(data)
        self.h11.receive_data(data)

    @property
    def head_started(self) -> bool:
        """Some bytes of the next request head are already here (e.g. a pipelined request)."""
        return bool(self._head_raw)

    def _next_event(self):
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            # h11 quotes the offending line, which may be a whole field: keep the log line short.
            reason = str(exc)
            if len(reason) > REASON_MAX_CHARS:
                reason = reason[:REASON_MAX_CHARS] + "..."
            raise HTTPError(exc.error_status_hint, reason) from None

    def next_head(self) -> RequestHead | type[NeedData] | None:
        """The next validated request head, NEED_DATA, or None if the client closed between requests.

        Raises :class:`HTTPError` for a request that must be refused.
        """
        try:
            event = self._next_event()
        except HTTPError as exc:
            raise (exc.status == 501 and policy.transfer_coding_error(bytes(self._head_raw))) or exc from None
        if event is h11.NEED_DATA:
            if too_long := policy.line_too_long(self._head_raw, self.config.limit_request_line):
                raise too_long
            return NEED_DATA
        if type(event) is h11.Request:
            self._method = event.method
            buffered = self.h11.trailing_data[0]
            policy.check_raw_head(bytes(self._head_raw[: self._head_fed - len(buffered)]), self.config)
            self.head = policy.validate(
                event.method, event.target, event.http_version, list(event.headers), self.config
            )
            self._chunks = _ChunkLines(buffered) if self.head.chunked else None
            self.body_received = self.status = 0
            self.sent_100 = False
            if not self.head.has_body:
                # Its head is the whole request: take h11's EndOfMessage now, so that ending the
                # cycle reads no body and next_body() answers b"" without asking h11 again.
                self._next_event()
            return self.head
        if type(event) is h11.ConnectionClosed:
            return None
        # PAUSED cannot happen here: the driver restarts the cycle before asking for a head.
        raise HTTPError(400, f"unexpected {type(event).__name__}")

    def continue_response(self) -> bytes:
        """``100 Continue`` if the client is waiting for it before sending its body, else b""."""
        if not self.h11.they_are_waiting_for_100_continue:
            return b""
        self.sent_100 = True
        return self.h11.send(h11.InformationalResponse(status_code=100, headers=[])) or b""

    def next_body(self) -> bytes | type[NeedData]:
        """The next piece of the request body, b"" once it is complete, or NEED_DATA.

        Raises :class:`BodyTooLarge` past ``--limit-request-body``, :class:`HTTPError`
        for a malformed body and :class:`ClientGone` if the client closed mid-body.
        """
        if self.head is not None and not self.head.has_body:  # h11 ended it with the head (next_head)
            return b""
        event = self._next_body_event()
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
        return NEED_DATA

    def _next_body_event(self):
        """The next h11 event of the body, with each chunk-size line and the trailers checked."""
        try:
            event = self._next_event()
        except HTTPError as exc:
            if exc.status == 501:  # h11 validates a Transfer-Encoding in the trailers as if in the head
                raise HTTPError(
                    400, "transfer-encoding is not allowed in trailers (RFC 9110 6.5.1)"
                ) from None
            raise
        if self._chunks is not None:
            if type(event) is h11.Data:
                self._chunks.data(event)
            elif type(event) is h11.EndOfMessage:
                chunks, self._chunks = self._chunks, None
                if discarded := chunks.end(list(event.headers)):
                    names = ", ".join(name.decode() for name in discarded)
                    log.info("trailer field(s) %s discarded: not allowed in trailers (RFC 9110 6.5.1)", names)
        return event

    # --- output ----------------------------------------------------------------------------------

    def response_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        first_data: bytes = b"",
        close: bool = False,
    ) -> bytes:
        """The status line and headers (plus the first body bytes, so they can go out in one write).

        h11 gets only the fields that frame the response or end the connection
        (:data:`FRAMING_FIELDS`): from those it decides the body's framing, adds
        ``Transfer-Encoding: chunked`` or ``Connection: close`` and keeps its
        keep-alive state right.  Every other field it would only validate again
        (two regexes per field, twice: once in ``Response()`` and again after its
        clean-up) and copy -- a fifth of a hello request's CPU.  So we check those
        fields in one regex over their serialised lines (the same rule as h11's:
        token names, RFC 9110 5.5 values) and put them after h11's head.
        """
        self.status = status
        framing, lines, named = writer.split_fields(headers)
        if b"server" not in named:
            lines.insert(0, b"Server: %s\r\n" % self._software)
        if b"date" not in named:
            lines.insert(0, writer.date_line())
        if close:
            framing.append((b"Connection", b"close"))
        writer.check_lines(lines)
        fields = b"".join(lines)
        head = self.h11.send(h11.Response(status_code=status, reason=reason, headers=framing))
        out = head[:-2] + fields + b"\r\n"  # h11's head ends with the blank line
        if first_data and self.wants_body:
            out += self.h11.send(h11.Data(data=first_data)) or b""
        return out

    @property
    def wants_body(self) -> bool:
        """False for HEAD and for 204/304 responses, whose body h11 (rightly) refuses to send."""
        if self.h11.our_state is not h11.SEND_BODY or self.status in (204, 304):
            return False
        return self._method != b"HEAD"

    def response_data(self, data: bytes) -> bytes:
        if not data or not self.wants_body:
            return b""
        try:
            return self.h11.send(h11.Data(data=data)) or b""
        except h11.LocalProtocolError as exc:  # more bytes than the app's Content-Length
            raise ResponseError(str(exc)) from None

    def response_end(self) -> bytes:
        try:
            return self.h11.send(_END_OF_MESSAGE) or b""
        except h11.LocalProtocolError as exc:  # fewer bytes than the app's Content-Length
            raise ResponseError(str(exc)) from None

    def error_response(self, status: int, message: str) -> bytes:
        """A complete small plain-text error response that closes the connection (b"" if none can be sent)."""
        body, headers = writer.error_body(status, message)
        reason = writer.REASONS.get(status, b"Error")
        try:
            return self.response_head(status, reason, headers, body, close=True) + self.response_end()
        except (h11.LocalProtocolError, ResponseError):
            return b""  # the state forbids a response (one is already under way): closing is all we can do

    def send_failed(self) -> None:
        """The driver could not write: nothing more can be sent on this connection."""
        self.h11.send_failed()

    # --- end of a request/response cycle ---------------------------------------------------------

    @property
    def response_done(self) -> bool:
        return self.h11.our_state is h11.DONE

    @property
    def body_unread(self) -> bool:
        """The response is done but the client is still (or may still be) sending the request body."""
        return self.h11.their_state is h11.SEND_BODY

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
            while True:
                event = self._next_body_event()
                if type(event) is h11.EndOfMessage:
                    return True
                if type(event) is h11.Data:
                    drained += len(event.data)
                    if drained > budget:
                        return False
                    continue
                return NEED_DATA if event is h11.NEED_DATA else False
        except HTTPError:
            return False

    def start_next_cycle(self) -> bool:
        """True, with the state reset for the next request, if both sides finished this one cleanly."""
        if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
            return False
        self.h11.start_next_cycle()
        self.head = None
        self._method = b""
        self._chunks = None
        buffered = self.h11.trailing_data[0]
        self._head_raw = bytearray(buffered[: self.config.max_head_size + 1])
        self._head_fed = len(buffered)
        return True

    @property
    def input_pending(self) -> bool:
        """The client may have sent bytes we never read (an unread body, a broken request)."""
        return self.h11.their_state in (h11.SEND_BODY, h11.ERROR)

    @property
    def input_buffered(self) -> bool:
        """Bytes (or the end of input) past the current request are already received, unparsed."""
        data, closed = self.h11.trailing_data
        return bool(data) or closed
