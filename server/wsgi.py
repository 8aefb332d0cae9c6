"""PEP 3333: the environ, ``wsgi.input``, ``start_response`` / ``write`` and running the app.

This module turns a :class:`~server.http.events.RequestHead` into an environ and
the application's answer into calls on a :class:`~server.http.driver.CoreDriver` (the blocking
:class:`~server.connection.HTTPConnection` or an event-mode connection).
It owns the WSGI rules (header timing, ``exc_info``, ``close()``); HTTP framing
stays in :mod:`server.http`.  It knows no sockets, threads or processes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

from server.http.driver import CoreDriver
from server.http.errors import HTTPError
from server.http.events import RequestHead
from server.http.grammar import TOKEN

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType]

# PEP 3333: "applications must not generate hop-by-hop headers" -- framing is the server's job.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers"}
    | {"transfer-encoding", "upgrade"}
)
_STATUS = re.compile(r"([2-9][0-9][0-9]) ([^\r\n]*)")


class WSGIInput:
    """``wsgi.input``: the request body as a file, ending exactly where the body ends.

    ``read_chunk`` returns the next piece of body (b"" at its end); whether the
    body is framed by Content-Length or chunked is the HTTP core's business, so an app can
    never read into the next pipelined request.
    """

    def __init__(self, read_chunk: Callable[[], bytes] | None) -> None:
        self._read_chunk = read_chunk
        self._buffer = bytearray()
        self._eof = read_chunk is None
        self.error: HTTPError | None = None  # why the body was refused (413, 408, 400), if it was

    def _fill(self) -> bool:
        """Append one more piece to the buffer; False at the end of the body."""
        if self._eof:
            return False
        try:
            data = self._read_chunk()  # type: ignore[misc]
        except HTTPError as exc:
            self.error = exc
            raise
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        start = 0
        while True:
            newline = self._buffer.find(b"\n", start)
            if newline >= 0:
                return self._take(min(newline + 1, limit))
            if len(self._buffer) >= limit:
                return self._take(limit)
            start = len(self._buffer)
            if not self._fill():
                return self._take(min(len(self._buffer), limit))

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        while line := self.readline():
            yield line


def connection_environ(
    server_addr: tuple, peer_addr: tuple, software: str, multithread: bool, multiprocess: bool
) -> dict[str, Any]:
    """The part of the environ that is the same for every request on one connection."""
    return {
        "SERVER_NAME": str(server_addr[0]),
        "SERVER_PORT": str(server_addr[1]),
        "REMOTE_ADDR": str(peer_addr[0]) if peer_addr else "",
        "REMOTE_PORT": str(peer_addr[1]) if peer_addr else "",
        "SERVER_SOFTWARE": software,
        "SCRIPT_NAME": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        # The body ends where HTTP says it ends (we decode chunked): werkzeug/Flask then
        # read chunked bodies instead of treating a missing Content-Length as "empty".
        "wsgi.input_terminated": True,
    }


# Header name as the cores give it (lower-case bytes) -> its environ key, made once per distinct name.
# Names are the client's choice, so the cache is bounded; past the bound a key is simply computed.
_ENVIRON_KEYS: dict[bytes, str | None] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}
_ENVIRON_KEYS_MAX = 1024


def environ_key(name: bytes) -> str | None:
    """``HTTP_USER_AGENT`` for ``user-agent``; None for a name with ``_`` (dropped, see build_environ)."""
    key = _ENVIRON_KEYS.get(name, "")
    if key == "":
        # "X_Forwarded_For" and "X-Forwarded-For" would both become HTTP_X_FORWARDED_FOR:
        # drop the underscore spelling so a client cannot spoof what a proxy set.
        key = None if b"_" in name else "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
            _ENVIRON_KEYS[name] = key
    return key


def build_environ(base: dict[str, Any], head: RequestHead, wsgi_input: WSGIInput) -> dict[str, Any]:
    """A fresh environ for one request (PEP 3333: native strings are latin-1 decoded bytes)."""
    environ = base.copy()
    environ["REQUEST_METHOD"] = head.method.decode("ascii")
    # PATH_INFO is percent-decoded bytes seen as latin-1; QUERY_STRING stays encoded.
    # "OPTIONS *" has no path: PATH_INFO is empty, REQUEST_URI says "*".
    path = head.path
    if path == b"*":
        environ["PATH_INFO"] = ""
    else:
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
    environ["QUERY_STRING"] = head.query.decode("latin-1")
    environ["RAW_URI"] = environ["REQUEST_URI"] = head.target.decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/" + head.http_version.decode("ascii")
    environ["wsgi.input"] = wsgi_input
    for name, value in head.headers:
        key = environ_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:  # a repeated list field (singletons were refused by the protocol)
            text = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + text
        environ[key] = text
    if head.authority is not None:  # absolute-form target: its authority wins over Host
        environ["HTTP_HOST"] = head.authority.decode("latin-1")
    return environ


def _latin1(value: Any, what: str, name: object = None) -> bytes:
    """``value`` as latin-1 bytes, or the error PEP 3333 asks for.

    ``name``, when given, is quoted after ``what`` in the message: the message is
    built only when there is an error (this runs for every response header).
    """
    if type(value) is not str:
        raise TypeError(f"{_what(what, name)} must be str, got {type(value).__name__}")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{_what(what, name)} must be latin-1 encodable: {value!r}") from None


def _what(what: str, name: object) -> str:
    return what if name is None else f"{what} {name!r}"


# Response header names already checked (a token, not hop-by-hop) -> (latin-1 bytes, is Content-Length).
# Apps send the same few names on every response; bounded, as the app could invent names.
_HEADER_NAMES: dict[str, tuple[bytes, bool]] = {}
_HEADER_NAMES_MAX = 1024


def _header_name(name: Any, value: Any) -> tuple[bytes, bool]:
    """A response header name checked once per distinct name; raises as start_response must."""
    if type(name) is str and (known := _HEADER_NAMES.get(name)) is not None:
        return known
    raw = _latin1(name, "header name")
    if not TOKEN.fullmatch(name):
        raise ValueError(f"invalid header {name!r}: {value!r}")
    lower = name.lower()
    if lower in HOP_BY_HOP:
        raise ValueError(f"hop-by-hop header {name!r} is the server's business (PEP 3333)")
    checked = (raw, lower == "content-length")
    if len(_HEADER_NAMES) < _HEADER_NAMES_MAX:
        _HEADER_NAMES[name] = checked
    return checked


# A status string or a (name, value) pair already checked -> what start_response makes of it: an app
# sends the same few on every response.  Bounded, as values may differ per response.
_STATUSES: dict[str, tuple[int, bytes]] = {}
_FIELDS: dict[tuple[str, str], tuple[tuple[bytes, bytes], bool]] = {}
_CHECKED_MAX = 1024


def _status(status: Any) -> tuple[int, bytes]:
    """``"200 OK"`` -> (200, b"OK"), or the error start_response must raise."""
    known = _STATUSES.get(status) if type(status) is str else None
    if known is None:
        match = _STATUS.fullmatch(status) if type(status) is str else None
        if match is None:
            raise ValueError(f"status must look like '200 OK', got {status!r}")
        known = int(match[1]), match[2].encode("latin-1")
        if len(_STATUSES) < _CHECKED_MAX:
            _STATUSES[status] = known
    return known


def _field(name: Any, value: Any) -> tuple[tuple[bytes, bytes], bool]:
    """A response header as latin-1 bytes and whether it is Content-Length; raises as start_response must."""
    raw_name, is_length = _header_name(name, value)
    raw_value = _latin1(value, "value of header", name)
    if "\r" in value or "\n" in value:
        raise ValueError(f"invalid header {name!r}: {value!r}")
    if is_length and not value.strip().isdigit():
        raise ValueError(f"Content-Length must be a number, got {value!r}")
    checked = (raw_name, raw_value), is_length
    if len(_FIELDS) < _CHECKED_MAX:
        _FIELDS[(name, value)] = checked
    return checked


class Response:
    """``start_response`` and ``write`` for one request, and when the head goes out.

    PEP 3333: the head is sent with the first non-empty body block (or when the
    body turns out empty), so an app may still replace it with ``exc_info``
    until then; after that ``exc_info`` re-raises.
    """

    def __init__(
        self, http: CoreDriver, close_after: Callable[[], bool], wsgi_input: WSGIInput | None = None
    ) -> None:
        self.http = http
        self.close_after = close_after
        self.wsgi_input = wsgi_input
        self.status: int = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.has_length = False
        self.headers_sent = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle, as PEP 3333 asks
        elif self.headers is not None:
            raise AssertionError("start_response() called again without exc_info")
        code, reason = _status(status)
        if type(headers) is not list:
            raise TypeError(f"response headers must be a list, got {type(headers).__name__}")
        encoded = []
        has_length = False
        for item in headers:
            if type(item) is not tuple or len(item) != 2:
                raise TypeError(f"each header must be a (name, value) tuple, got {item!r}")
            try:
                known = _FIELDS.get(item)
            except TypeError:  # an unhashable name or value: _field refuses it
                known = None
            field, is_length = known or _field(*item)
            has_length = has_length or is_length
            encoded.append(field)
        self.status, self.reason = code, reason
        self.headers = encoded
        self.has_length = has_length
        return self.write

    def send_head(self, first_data: bytes, body_length: int | None = None) -> None:
        """Send the head (with the first block); ``body_length`` when we know the whole body."""
        if self.headers is None:
            raise AssertionError("the application sent a body before calling start_response()")
        if self.wsgi_input is not None and self.wsgi_input.error is not None:
            # The server refused the body (e.g. a chunked body over --limit-request-body) and the
            # app turned that into an answer of its own (Flask: 500). The client must learn the
            # real reason, so the server's 413/408/400 goes out instead.
            raise self.wsgi_input.error
        headers = self.headers
        head = self.http.head is not None and self.http.head.method == b"HEAD"
        # HEAD: the app may skip the body (werkzeug does), so its length says nothing about GET's.
        if body_length is not None and not self.has_length and self.status not in (204, 304) and not head:
            headers = [*headers, (b"Content-Length", str(body_length).encode())]
        self.headers_sent = True
        self.http.send_head(self.status, self.reason, headers, first_data, close=self.close_after())

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: send now, head first if need be."""
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
        if not self.headers_sent:
            self.send_head(data)
        else:
            self.http.send_data(data)


def run_app(app: WSGIApp, environ: dict[str, Any], response: Response) -> None:
    """Call the app and send what it returns; its ``close()`` is called whatever happens."""
    result = app(environ, response.start_response)
    try:
        http = response.http
        # One block in a list (the common case): its length is the body's, so no chunking needed.
        if type(result) in (list, tuple) and len(result) == 1 and not response.headers_sent:  # type: ignore[arg-type]
            data = result[0]  # type: ignore[index]
            if type(data) is not bytes:
                raise TypeError(f"the application must yield bytes, got {type(data).__name__}")
            response.send_head(data, body_length=len(data))
        else:
            for data in result:
                if type(data) is not bytes:
                    raise TypeError(f"the application must yield bytes, got {type(data).__name__}")
                if not data:
                    continue
                if not response.headers_sent:
                    response.send_head(data)
                else:
                    http.send_data(data)
                if not http.wants_body:
                    break  # HEAD, 204, 304: the head is out, the body is not wanted
            if not response.headers_sent:
                response.send_head(b"", body_length=0)
        http.end_response()
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
