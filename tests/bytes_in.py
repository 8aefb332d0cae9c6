"""The protocol tests' entry points: bytes in, what the server answers out, no socket.

``outcome`` feeds a whole request to a sans-IO core (``server/http/``) and reads
the head and every body piece, so a refusal anywhere in the request is its answer.
``serve`` drives the core as a server does over a stream cut into pieces (the client closing
after the last) and records what each request got: the fuzz and the parsers' differential
tests read the same record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.config import Config
from server.http import new_core
from server.http.errors import ClientGone, HTTPError
from server.http.events import NEED_DATA, RequestHead

ACCEPTED = (200, "")  # what outcome() returns when the head and the whole body are accepted
# A response's Date is the clock's, not the core's: two runs a second apart must still agree.
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def outcome(data: bytes, config: Config | None = None, **options) -> tuple[int, str]:
    """(status, reason) the server answers ``data`` with: a ``Config`` or its options as keywords."""
    core = new_core(config or Config(**options))
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
class Answer:
    """The response ``serve`` gives every request, and whether it reads the body first."""

    status: int = 200
    reason: bytes = b"OK"
    headers: tuple[tuple[bytes, bytes], ...] = ((b"Date", b"-"), (b"Content-Length", b"2"))
    chunks: tuple[bytes, ...] = (b"ok",)
    close: bool = False
    read_body: bool = True  # False: answer first, then drain what is left (as a server ending a cycle)


@dataclass(frozen=True)
class Served:
    """A request the core read and answered with the ``Answer``."""

    request: tuple  # method, target, HTTP version, headers, Content-Length, as the head said them
    continued: bytes  # the 100 Continue the core owed, else b""
    body: bytes  # with ``read_body`` False: what was read before answering (nothing)
    response: bytes  # its Date normalised
    # read_body: whether the connection went on to a next request; else (response done, body unread,
    # 100 never sent[, drained], next cycle)
    keep: bool | tuple

    @property
    def keep_alive(self) -> bool:
        """Whether the connection went on to a next request."""
        return self.keep if isinstance(self.keep, bool) else bool(self.keep[-1])


@dataclass(frozen=True)
class Closed:
    """The client closed between requests."""


@dataclass(frozen=True)
class Refused:
    """The core refused a request: the error it raised and the answer it wrote (Date normalised)."""

    status: int
    reason: str
    pending: bool  # input the core had not read when it refused
    response: bytes


@dataclass(frozen=True)
class Gone:
    """The client went away mid-request."""

    why: str


Entry = Served | Closed | Refused | Gone


def serve(pieces: list[bytes], config: Config, answer: Answer = Answer()) -> list[Entry]:
    """What each request of the stream got, in order (``Served``), ending with how the connection
    ended (``Closed``, ``Refused`` or ``Gone``, unless the last request closed it)."""
    core = new_core(config)
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
            continued = core.continue_response() if answer.read_body else b""
            body = b""
            while answer.read_body and (data := core.next_body()) != b"":
                if data is NEED_DATA:
                    more()
                else:
                    body += data
            first, *rest = answer.chunks or (b"",)
            out = core.response_head(answer.status, answer.reason, list(answer.headers), first, answer.close)
            out += b"".join(core.response_data(chunk) for chunk in rest) + core.response_end()
            if answer.read_body:
                keep = core.start_next_cycle()
            else:
                keep = (core.response_done, core.body_unread, core.body_may_never_come)
                if keep[0] and keep[1] and not keep[2]:
                    while (drained := core.discard_body(8)) is NEED_DATA:
                        more()
                    keep += (drained,)
                keep += (core.start_next_cycle(),)
            served = Served(request, continued, body, _DATE.sub(b"\r\nDate: -\r\n", out), keep)
            record.append(served)
            if not served.keep_alive:
                return record
    except HTTPError as exc:
        pending = core.input_pending
        response = _DATE.sub(b"\r\nDate: -\r\n", core.error_response(exc.status, exc.reason))
        record.append(Refused(exc.status, exc.reason, pending, response))
    except ClientGone as exc:
        record.append(Gone(str(exc)))
    return record
