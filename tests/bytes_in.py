"""The protocol tests' entry points: bytes in, what the server answers out, no socket.

``outcome`` feeds a whole request to the sans-IO core (``server/protocol.py``) and reads
the head and every body piece, so a refusal anywhere in the request is its answer.
``serve`` drives the core as a server does over a stream cut into pieces (the client closing
after the last) and records what each request got: the fuzz and the parsers' differential
tests read the same record.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.config import Config
from server.protocol import NEED_DATA, ClientGone, HTTPCore, HTTPError, RequestHead

ACCEPTED = (200, "")  # what outcome() returns when the head and the whole body are accepted


def outcome(data: bytes, config: Config | None = None, **options) -> tuple[int, str]:
    """(status, reason) the server answers ``data`` with: a ``Config`` or its options as keywords."""
    core = HTTPCore(config or Config(**options))
    core.receive(data)
    core.receive(b"")
    try:
        head = core.next_head()
        assert isinstance(head, RequestHead), head
        while (piece := core.next_body()) != b"":
            assert piece is not NEED_DATA, "the request was incomplete"
    except HTTPError as exc:
        return exc.status, exc.reason
    return ACCEPTED


@dataclass(frozen=True)
class Served:
    """A request the core read whole and answered 200."""

    request: tuple  # method, target, HTTP version, headers, Content-Length, as the head said them
    continued: bytes  # the 100 Continue the core owed, else b""
    body: bytes
    response: bytes
    keep_alive: bool  # whether the connection went on to a next request


@dataclass(frozen=True)
class Closed:
    """The client closed between requests."""


@dataclass(frozen=True)
class Refused:
    """The core refused a request: the error it raised and the answer it wrote."""

    status: int
    reason: str
    pending: bool  # input the core had not read when it refused
    response: bytes


@dataclass(frozen=True)
class Gone:
    """The client went away mid-request."""

    why: str


Entry = Served | Closed | Refused | Gone


def serve(pieces: list[bytes], config: Config) -> list[Entry]:
    """What each request of the stream got, in order (``Served``), ending with how the connection
    ended (``Closed``, ``Refused`` or ``Gone``, unless the last request closed it)."""
    core = HTTPCore(config)
    feed = iter([*pieces, b""])
    record: list[Entry] = []

    def more() -> None:
        data = next(feed, None)
        assert data is not None, "the core waits for more input after the client closed"
        core.receive(data)

    try:
        while True:
            while (head := core.next_head()) is NEED_DATA:
                more()
            if head is None:
                return [*record, Closed()]
            assert isinstance(head, RequestHead)
            request = (head.method, head.target, head.http_version, head.headers, head.content_length)
            continued = core.continue_response()
            body = b""
            while (data := core.next_body()) != b"":
                if data is NEED_DATA:
                    more()
                else:
                    body += data
            headers = [(b"Date", b"-"), (b"Content-Length", b"2")]
            out = core.response_head(200, b"OK", headers, b"ok") + core.response_end()
            served = Served(request, continued, body, out, core.start_next_cycle())
            record.append(served)
            if not served.keep_alive:
                return record
    except HTTPError as exc:
        pending = core.input_pending
        record.append(Refused(exc.status, exc.reason, pending, core.error_response(exc.status, exc.reason)))
    except ClientGone as exc:
        record.append(Gone(str(exc)))
    return record
