"""The response head as bytes: status lines, a ``Date`` made once per second, checked field lines.

Both cores build a head from these pieces; the framing fields (Content-Length,
Transfer-Encoding, Connection) are each core's own business.  What it does NOT
know: the connection's state, the request, sockets.
"""

from __future__ import annotations

import email.utils
import time

from server.http import grammar
from server.http.errors import REASON_MAX_CHARS, ResponseError

# Our error responses' reason phrases.
REASONS = {
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
# The fields that frame a response or end the connection: the cores decide them.
FRAMING_FIELDS = frozenset({b"content-length", b"transfer-encoding", b"connection"})
# Field lines already checked against grammar.FIELD_LINES: an app sends the same few on every
# response.  Bounded, as values may differ per response; past the bound a line is checked each time.
_CHECKED: set[bytes] = set()
_CHECKED_MAX = 1024
# (status, reason) -> its status line; bounded the same way.
_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}

_date: tuple[int, bytes] = (0, b"")


def date_line() -> bytes:
    """``Date: ...`` with its CRLF, formatted once per second (it is on every response)."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, b"Date: %s\r\n" % email.utils.formatdate(now, usegmt=True).encode("ascii"))
    return _date[1]


def status_line(status: int, reason: bytes) -> bytes:
    """``HTTP/1.1 200 OK`` with its CRLF, made once per distinct status and reason."""
    line = _STATUS_LINES.get((status, reason))
    if line is None:
        if not 200 <= status < 1000:
            raise ResponseError(f"a response's status must be in [200, 1000), not {status}")
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_STATUS_LINES) < _CHECKED_MAX:
            _STATUS_LINES[(status, reason)] = line
    return line


def split_fields(
    headers: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[bytes, bytes]], list[bytes], set[bytes]]:
    """(the framing fields, every other field as a serialised line, the lower-cased names)."""
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


def check_lines(lines: list[bytes]) -> None:
    """Raise :class:`ResponseError` unless each line is one field line (RFC 9110 5.1, 5.5)."""
    unchecked = [line for line in lines if line not in _CHECKED]
    if not unchecked:
        return
    fields = b"".join(unchecked)
    # One line per field: a CR LF inside a value would pass the regex as a line of its own.
    if fields.count(b"\n") != len(unchecked) or not grammar.FIELD_LINES.fullmatch(fields):
        raise ResponseError(f"invalid response header field {_first_bad_field(unchecked)!r}")
    if len(_CHECKED) < _CHECKED_MAX:
        _CHECKED.update(unchecked)


def _first_bad_field(lines: list[bytes]) -> bytes:
    """The name of the first bad field line (only its name: values may be secrets)."""
    for line in lines:
        if line.count(b"\n") != 1 or not grammar.FIELD_LINES.fullmatch(line):
            return line.partition(b":")[0][:REASON_MAX_CHARS]
    return b""


def error_body(status: int, message: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A small plain-text error response's body and fields."""
    body = f"{status} {message}\n".encode("latin-1", "replace")
    return body, [(b"Content-Type", b"text/plain; charset=utf-8"), (b"Content-Length", b"%d" % len(body))]
