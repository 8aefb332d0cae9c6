"""HTTP/1.1 for one client connection, spoken through h11, with no I/O at all (sans-IO).

- :class:`HTTPCore` -- in h11's style: bytes in, validated requests out;
  responses in, bytes out.  It adds what h11 leaves to a server: the request
  limits (414 / 431 / 413), the checks RFC 9110/9112 ask of a server that h11
  0.16 does not make -- smuggling classics such as obs-fold, control
  characters, list-form Content-Length, Transfer-Encoding in HTTP/1.0, chunked
  not last, forbidden trailers, sloppy chunk-size lines, repeated singleton
  fields, versions other than 1.0/1.1 (505), malformed targets -- plus
  ``100 Continue`` and the end-of-cycle bookkeeping.  Where h11's parsed events
  hide what was sent (it unfolds obs-fold, merges Content-Lengths, skips
  chunk-size lines), the core looks at the raw bytes h11 has accepted: a check
  beside h11, never a second parser.  With ``--parser httptools`` a request head
  is read by llhttp instead (:mod:`server.fastpath`) and goes through the same
  checks and h11's state machine; whatever llhttp reads differently is handed to h11.
- :class:`CoreDriver` -- what the connection loop and :mod:`server.wsgi` call
  to send a response through a core; a driver supplies only the byte moving
  (``_send``, ``read_body``).

What this module does NOT know: sockets, timeouts and the clock (beyond the
``Date`` header), WSGI, threads or processes.  The drivers live with the code
that runs them: the blocking one (one connection per thread or process) in
:mod:`server.connection`, the non-blocking one in :mod:`server.workers.event`.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import re
import time
from dataclasses import dataclass

import h11

from server.config import Config
from server.fastpath import HAND_OVER, FastPath

log = logging.getLogger("wsgi_lab")

# A refusal's reason goes into one log line and the error body: at most this many characters of it.
REASON_MAX_CHARS = 200

# h11 already limits a target to visible ASCII.  On top of that a target is malformed if it has
# a "%" that does not start a %HH escape (we decode the path).  A "#fragment" is never part of
# the path or query (RFC 3986 3.5); clients should not send one, but gunicorn accepts it, and so
# do we.  Stricter RFC 3986 character rules would refuse what browsers really send ("[" in queries).
ORIGIN_FORM = re.compile(rb"/(?:[^%#?]|%[0-9A-Fa-f]{2})*(?:\?[^#]*)?(?:#.*)?")
# Absolute-form (RFC 9112 3.2.2), userinfo included: RFC 9110 4.2.4 deprecates it, but it is not a
# framing risk and gunicorn accepts it.  It never reaches the environ (HTTP_HOST is host[:port]).
ABSOLUTE_FORM = re.compile(
    rb"(?i:https?)://(?:[^@/?#]*@)?(?P<authority>[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+)(?P<rest>.*)"
)

# --- checks on top of h11 ---------------------------------------------------------------------
# h11 0.16 already refuses (400): a method that is not a token (RFC 9110 9.1) and any request line
# not exactly "token SP visible-ASCII SP HTTP/D.D"; a field name that is not a token or has space
# before the colon (RFC 9112 5.1); NUL, CR, LF, VT and FF in a field value; a second Host and a
# missing one in HTTP/1.1 (RFC 9112 3.2); differing Content-Lengths and non-digits in one; a
# chunk-size line without CRLF or with space before an extension.  It answers 501 to every
# Transfer-Encoding other than exactly "chunked".  It lets through everything below.
# One scan of the raw head (and of a chunked body's trailer block) finds, in this order of
# alternatives:
# - obs-fold, a line starting with SP/HTAB: RFC 9112 5.2 lets a server reject it with 400; h11
#   silently unfolds it, which a front proxy may not, so the two would see different fields;
# - a CR not followed by LF, or an LF not preceded by CR: RFC 9112 2.2 allows a recipient to
#   accept a bare LF as a line end, but a proxy that does not would see one field where we see two;
# - a control character other than HTAB: RFC 9110 5.5 (field values are VCHAR, obs-text, SP and
#   HTAB); h11 refuses NUL, CR, LF, VT and FF but lets BEL, DEL and the others through.
_RAW_HEAD_FAULT = re.compile(rb"\n[ \t]|\r(?!\n)|(?<!\r)\n|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What a head may hold once its CRLFs are taken out: HTAB, SP, visible ASCII and obs-text.
_LINE_BYTES = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# Fields whose repetition is ambiguous (RFC 9110 5.3: only list-valued fields may repeat).  h11
# refuses a second Host but merges two equal Content-Lengths; two Content-Types would let a filter
# in front of us check one media type while the application parses the other.
SINGLETON_FIELDS = frozenset({b"host", b"content-length", b"content-type"})
# RFC 9110 8.6: Content-Length = 1*DIGIT.  h11 turns the list form "5, 5" into "5"; we refuse it
# (8.6 allows either), as we refuse signs and inner spaces.
_DECIMAL = re.compile(rb"[0-9]+")
# RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF.  h11 accepts whitespace after the size
# without an extension and any byte (a bare CR too) inside an extension.
_CHUNK_LINE = re.compile(rb"[0-9A-Fa-f]+(?:;[\t\x20-\x7e\x80-\xff]*)?\r\n")
# h11 finds the end of a header or trailer block this way (a blank line, with or without CR).
_BLOCK_END = re.compile(rb"\n\r?\n")
# RFC 9110 6.5.1: fields a sender must not put in trailers, because they control framing, routing,
# authentication, request modifiers or the content's metadata; a recipient must not merge them into
# the header section.  Those that could change how this message or the next is framed or whom it
# is for are refused (400), as gunicorn refuses them; the rest are discarded (and logged): the
# request is valid, only those trailer fields are not taken.  (No trailer ever reaches the app:
# the environ is built from the header section before the body is read.)
TRAILER_REFUSED = frozenset(
    {b"content-length", b"transfer-encoding", b"trailer", b"te", b"host", b"authorization"}
    | {b"proxy-authorization"}
)
TRAILER_DISCARDED = frozenset(
    {b"cookie", b"set-cookie", b"content-type", b"content-encoding", b"content-range", b"range"}
    | {b"expect", b"max-forwards", b"cache-control", b"vary", b"if-match", b"if-none-match"}
    | {b"if-modified-since", b"if-unmodified-since", b"if-range"}
)
# RFC 9112 2.3 / RFC 9110 15.6.6: we speak HTTP/1.0 and 1.1; any other version gets 505.
HTTP_VERSIONS = (b"1.0", b"1.1")


def _head_fault(raw: bytes) -> bytes | None:
    """What :data:`_RAW_HEAD_FAULT` finds first in ``raw``, or None; a clean head is cleared fast.

    The regex tries four alternatives at every byte: about 20 µs for a browser's
    head.  A clean head -- nearly every head -- is cleared in a few passes of C
    instead: no line starts with SP or HTAB, and once every CRLF is taken out,
    only line bytes remain (so there is no bare CR, bare LF or control
    character).  Only a head that fails this is searched, to name its fault.
    """
    if b"\n " in raw or b"\n\t" in raw or raw.replace(b"\r\n", b"").translate(None, _LINE_BYTES):
        fault = _RAW_HEAD_FAULT.search(raw)
        return fault[0] if fault else None
    return None


def _fault_reason(fault: bytes) -> str:
    """Why :data:`_RAW_HEAD_FAULT` matched, in words."""
    if fault[:1] == b"\n" and len(fault) == 2:
        return "obs-fold line continuation (RFC 9112 5.2)"
    if fault == b"\r":
        return "bare CR in the head (RFC 9112 2.2)"
    if fault == b"\n":
        return "bare LF in the head (RFC 9112 2.2)"
    return f"control character 0x{fault[0]:02x} in a field (RFC 9110 5.5)"


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
        if target[:1] in (b"?", b"#"):
            target = b"/" + target
    if method == b"CONNECT":
        raise HTTPError(400, "CONNECT needs a proxy; this is an origin server")
    if ORIGIN_FORM.fullmatch(target) is None:
        raise HTTPError(400, "malformed request target")
    path, _, query = target.partition(b"#")[0].partition(b"?")
    return path, query, authority


def check_raw_head(raw: bytes, config: Config) -> None:
    """Refuse what h11 accepted but the head as sent shows to be unsafe; ``raw`` is the whole head.

    h11 unfolds obs-fold, merges equal Content-Lengths and normalises their list
    form, so these checks need the bytes; the lines themselves were already
    validated by h11 (this only looks at them).
    """
    if len(raw) > config.max_head_size:
        raise HTTPError(431, f"request head larger than {config.max_head_size} bytes")
    if fault := _head_fault(raw):
        raise HTTPError(400, _fault_reason(fault))
    seen: set[bytes] = set()
    for line in raw.split(b"\r\n")[1:]:
        if not line:
            break  # the blank line that ends the head
        if len(line) + 2 > config.limit_request_field_size:  # counted with its CRLF, as gunicorn does
            raise HTTPError(431, f"header line longer than {config.limit_request_field_size} bytes")
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in SINGLETON_FIELDS:
            if name in seen:
                raise HTTPError(400, f"repeated {name.decode()} field (RFC 9110 5.3)")
            seen.add(name)
        if name == b"content-length" and not _DECIMAL.fullmatch(value.strip(b" \t")):
            raise HTTPError(400, "Content-Length is not a plain decimal number (RFC 9110 8.6)")


def transfer_coding_error(raw: bytes) -> HTTPError | None:
    """400 for a Transfer-Encoding that breaks the framing, None where h11's 501 is right.

    h11 answers 501 to every Transfer-Encoding but exactly "chunked".  RFC 9112
    6.1 asks 501 only for a coding the server does not implement; chunked not
    last (6.3) or applied twice (7), or any Transfer-Encoding in HTTP/1.0
    (6.1), make the body's length unknowable: 400.
    """
    end = _BLOCK_END.search(raw)
    lines = raw[: end.start() if end else len(raw)].split(b"\n")
    codings = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding":
            codings += [coding.strip(b" \t\r").lower() for coding in value.split(b",")]
    if not codings:
        return None
    if lines[0].rstrip(b"\r").endswith(b"HTTP/1.0"):
        return HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1)")
    if b"chunked" in codings and (codings[-1] != b"chunked" or codings.count(b"chunked") > 1):
        return HTTPError(400, "chunked must be the last transfer coding, applied once (RFC 9112 6.3)")
    return None


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
        if not _CHUNK_LINE.fullmatch(self.raw, self.skip, end):
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
            end = _BLOCK_END.search(block)
            stop = end.end() if end is not None and block[:1] != b"\n" else 1
            if fault := _RAW_HEAD_FAULT.search(block, 0, stop):
                raise HTTPError(400, "in the trailers: " + _fault_reason(fault[0]))
        for name, _ in trailers:
            if name in TRAILER_REFUSED:
                raise HTTPError(400, f"{name.decode()} is not allowed in trailers (RFC 9110 6.5.1)")
        return [name for name, _ in trailers if name in TRAILER_DISCARDED]


# The response fields h11 must see to frame the body and decide keep-alive (HTTPCore.response_head).
FRAMING_FIELDS = frozenset({b"content-length", b"transfer-encoding", b"connection"})
# Response field lines as h11 would accept them: a token name and a value of visible characters
# (obs-text too) with single spaces or tabs inside, none at either end (RFC 9110 5.1, 5.5).
_VCHARS = rb"[\x21-\x7e\x80-\xff]+"
_FIELD_LINES = re.compile(
    rb"(?:[!#$%%&'*+\-.^_`|~0-9A-Za-z]+: (?:%s(?:[ \t]+%s)*)?\r\n)*" % (_VCHARS, _VCHARS)
)


def _split_fields(
    headers: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[bytes, bytes]], list[bytes], set[bytes]]:
    """(the framing fields for h11, every other field as a serialised line, the lower-cased names)."""
    framing = []
    lines = []
    named = set()
    for name, value in headers:
        lower = name.lower()
        named.add(lower)
        if lower in FRAMING_FIELDS:
            framing.append((name, value))
        else:
            lines.append(b"%s: %s\r\n" % (name, value))
    return framing, lines, named


def _first_bad_field(lines: list[bytes]) -> bytes:
    """The name of the first field line h11 would refuse (only its name: values may be secrets)."""
    for line in lines:
        if line.count(b"\n") != 1 or not _FIELD_LINES.fullmatch(line):
            return line.partition(b":")[0][:REASON_MAX_CHARS]
    return b""


NEED_DATA = h11.NEED_DATA  # "feed me more bytes": returned by HTTPCore.next_head / next_body
# h11's events are immutable: every response ends with this one (building it checks its empty trailers).
_END_OF_MESSAGE = h11.EndOfMessage()


class HTTPCore:
    """HTTP/1.1 for one connection, with no socket: bytes in, validated requests out; responses in, bytes out.

    This is h11 plus what h11 leaves to a server: the request limits, the
    checks RFC 9112 asks of a server on top of h11's parsing, ``100 Continue``
    and the end-of-cycle bookkeeping.  It never blocks and never touches a
    socket, so two very different drivers share it: :class:`server.connection.HTTPConnection`
    (blocking reads with timeouts, one connection per thread or process) and
    the event mode's loop (non-blocking, every connection in one thread).  It
    is also the place to test a protocol rule directly -- bytes in, status out::

        core = HTTPCore(Config())
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
        # The httptools fast path (server.fastpath) while it reads this connection; None = h11 reads it.
        self._fast = (
            FastPath(config.limit_request_line, config.max_head_size)
            if config.parser_in_use == "httptools"
            else None
        )

    # --- input -----------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means the client closed its side."""
        if self._fast is not None:
            self._fast.receive(data)
            return
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
        return bool(self._fast.buffer if self._fast is not None else self._head_raw)

    def _next_event(self):
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            # h11 quotes the offending line, which may be a whole field: keep the log line short.
            reason = str(exc)
            if len(reason) > REASON_MAX_CHARS:
                reason = reason[:REASON_MAX_CHARS] + "..."
            raise HTTPError(exc.error_status_hint, reason) from None

    def next_head(self) -> RequestHead | type[h11.NEED_DATA] | None:
        """The next validated request head, NEED_DATA, or None if the client closed between requests.

        Raises :class:`HTTPError` for a request that must be refused.
        """
        if self._fast is not None:
            head = self._fast_head()
            if head is not HAND_OVER:
                return head
        try:
            event = self._next_event()
        except HTTPError as exc:
            raise (exc.status == 501 and transfer_coding_error(bytes(self._head_raw))) or exc from None
        if event is h11.NEED_DATA:
            limit = self.config.limit_request_line
            if len(self._head_raw) > limit + 1 and self._head_raw.find(b"\n", 0, limit + 2) < 0:
                raise HTTPError(414, f"request line longer than {limit} bytes")
            return h11.NEED_DATA
        if type(event) is h11.Request:
            self._method = event.method
            buffered = self.h11.trailing_data[0]
            check_raw_head(bytes(self._head_raw[: self._head_fed - len(buffered)]), self.config)
            self.head = self._validate(event)
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

    def _fast_head(self):
        """next_head on the fast path: the head llhttp read, if our policy takes it, else HAND_OVER.

        The same checks as on h11's path, in the same order.  A head they refuse
        (or one llhttp cannot read as h11 would) goes to h11, so that h11 and the
        policy give today's answer, word for word.  A chunked body goes to h11 too
        (its chunk-line checks follow h11's events).
        """
        fast = self._fast
        got = fast.next_request()
        if got is NEED_DATA or got is None:
            return got
        if got is not HAND_OVER:
            request, raw = got
            try:
                check_raw_head(raw, self.config)
                head = self._validate(request)
            except HTTPError:
                head = None
            if head is not None and not head.chunked:
                fast.accept(len(raw), head.content_length or 0)
                # h11's state machine takes the event as if h11 had parsed it: keep-alive, 100-continue,
                # the response's framing.  (_process_event is what h11's own next_event calls.)
                self.h11._process_event(h11.CLIENT, request)
                self._method = request.method
                self.head = head
                self.body_received = self.status = 0
                self.sent_100 = False
                if not head.has_body:
                    self.h11._process_event(h11.CLIENT, _END_OF_MESSAGE)
                return head
        self._hand_over()
        return HAND_OVER

    def _hand_over(self) -> None:
        """From now on h11 reads this connection, starting with the head in the fast path's buffer."""
        fast, self._fast = self._fast, None
        data = bytes(fast.buffer)
        self._head_raw = bytearray(data[: self.config.max_head_size + 1])
        self._head_fed = len(data)
        self.h11.receive_data(data)
        if fast.closed:
            self.h11.receive_data(b"")

    def _validate(self, request: h11.Request) -> RequestHead:
        """The checks h11 leaves to us on the parsed request: version, limits, CL + TE, the target."""
        config = self.config
        if request.http_version not in HTTP_VERSIONS:
            raise HTTPError(505, f"HTTP/{request.http_version.decode()} is not supported (RFC 9112 2.3)")
        line_length = len(request.method) + len(request.target) + 10  # "M T HTTP/1.1", without CRLF
        if line_length > config.limit_request_line:
            raise HTTPError(414, f"request line longer than {config.limit_request_line} bytes")
        headers = list(request.headers)
        if len(headers) > config.limit_request_fields:
            raise HTTPError(431, f"more than {config.limit_request_fields} header fields")
        content_length = None
        chunked = False
        for name, value in headers:
            if name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if chunked and content_length is not None:
            # RFC 9112 6.3: a request with both is a smuggling attempt or broken; refuse and close.
            raise HTTPError(400, "both Content-Length and Transfer-Encoding")
        if chunked and request.http_version == b"1.0":
            # RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing; close after answering.
            raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1)")
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

    def continue_response(self) -> bytes:
        """``100 Continue`` if the client is waiting for it before sending its body, else b""."""
        if not self.h11.they_are_waiting_for_100_continue:
            return b""
        self.sent_100 = True
        return self.h11.send(h11.InformationalResponse(status_code=100, headers=[])) or b""

    def next_body(self) -> bytes | type[h11.NEED_DATA]:
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
        return h11.NEED_DATA

    def _next_body_event(self):
        """The next h11 event of the body, with each chunk-size line and the trailers checked."""
        if self._fast is not None:
            return self._fast_body_event()
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

    def _fast_body_event(self):
        """The next event of a Content-Length body on the fast path, as h11 would give it."""
        try:
            piece = self._fast.body_piece()
        except h11.RemoteProtocolError as exc:
            raise HTTPError(exc.error_status_hint, str(exc)) from None
        if piece is NEED_DATA:
            return NEED_DATA
        event = h11.Data(data=piece) if piece else _END_OF_MESSAGE
        self.h11._process_event(h11.CLIENT, event)
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
        framing, lines, named = _split_fields(headers)
        if b"server" not in named:
            lines.insert(0, b"Server: %s\r\n" % self._software)
        if b"date" not in named:
            lines.insert(0, b"Date: %s\r\n" % http_date())
        if close:
            framing.append((b"Connection", b"close"))
        fields = b"".join(lines)
        # One line per field: a CR LF inside a value would pass the regex as a line of its own.
        if fields.count(b"\n") != len(lines) or not _FIELD_LINES.fullmatch(fields):
            raise ResponseError(f"invalid response header field {_first_bad_field(lines)!r}")
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
        body = f"{status} {message}\n".encode("latin-1", "replace")
        headers = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode()),
        ]
        reason = _REASONS.get(status, b"Error")
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

    def discard_body(self, budget: int) -> bool | type[h11.NEED_DATA]:
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
                return h11.NEED_DATA if event is h11.NEED_DATA else False
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
        if self._fast is not None:
            return True
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
        if self._fast is not None:
            return bool(self._fast.buffer) or self._fast.closed
        data, closed = self.h11.trailing_data
        return bool(data) or closed


class CoreDriver:
    """What :func:`server.connection.serve_request` and :class:`server.wsgi.Response` use, over an HTTPCore.

    A driver moves the core's bytes: it supplies ``_send`` (write, or raise
    :class:`ClientGone`) and ``read_body``; the rest -- encoding a response
    through the core, the current head -- is the same for every driver: the
    blocking :class:`server.connection.HTTPConnection` and the event mode's connections.
    """

    core: HTTPCore

    @property
    def head(self) -> RequestHead | None:
        return self.core.head

    @property
    def wants_body(self) -> bool:
        return self.core.wants_body

    @property
    def input_pending(self) -> bool:
        return self.core.input_pending

    def read_body(self) -> bytes:
        """Hook: the next piece of the request body, b"" once it is complete."""
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        """Hook: write ``data`` to the client, or raise :class:`ClientGone`."""
        raise NotImplementedError

    def send_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        first_data: bytes = b"",
        close: bool = False,
    ) -> None:
        """Send the status line, the headers and (in the same write) the first body bytes."""
        self._send(self.core.response_head(status, reason, headers, first_data, close))

    def send_data(self, data: bytes) -> None:
        self._send(self.core.response_data(data))

    def end_response(self) -> None:
        self._send(self.core.response_end())

    def send_error(self, status: int, message: str) -> None:
        """A small plain-text error response that closes the connection."""
        with contextlib.suppress(ClientGone):  # the client is gone: closing is all we can do
            self._send(self.core.error_response(status, message))


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
    505: b"HTTP Version Not Supported",
}
