"""The protocol tests' entry points: bytes in, what the server answers out, no socket.

``outcome`` feeds a whole request to a sans-IO core (``server/http/``) and reads
the head and every body piece, so a refusal anywhere in the request is its answer.
``serve`` drives the core as a server does over a stream cut into pieces (the client closing
after the last) and records what each request got: the fuzz and the parsers' differential
tests read the same record.
"""

from __future__ import annotations

from server.config import Config
from server.http import new_core
from server.http.errors import ClientGone, HTTPError
from server.http.events import NEED_DATA, RequestHead

ACCEPTED = (200, "")  # what outcome() returns when the head and the whole body are accepted


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


def serve(pieces: list[bytes], config: Config) -> list[tuple]:
    """What each request of the stream got, in order, ending with how the connection ended.

    A served request is ``(request, 100-continue bytes, body, response bytes, keep-alive)``;
    the last entry is ``("closed",)``, ``("refused", status, reason, input pending, error
    response bytes)`` or ``("gone", why)``.
    """
    core = new_core(config)
    feed = iter([*pieces, b""])
    record: list[tuple] = []

    def more() -> None:
        data = next(feed, None)
        assert data is not None, "the core waits for more input after the client closed"
        core.receive(data)

    try:
        while True:
            while (head := core.next_head()) is NEED_DATA:
                more()
            if head is None:
                return [*record, ("closed",)]
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
            record.append((request, continued, body, out, core.start_next_cycle()))
            if not record[-1][-1]:
                return record
    except HTTPError as exc:
        pending = core.input_pending
        record.append(
            ("refused", exc.status, exc.reason, pending, core.error_response(exc.status, exc.reason))
        )
    except ClientGone as exc:
        record.append(("gone", str(exc)))
    return record
