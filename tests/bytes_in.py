"""The protocol rule tests' one entry point: bytes in, (status, reason) out, no socket.

``outcome`` feeds a whole request to the sans-IO core (``server/protocol.py``) and reads
the head and every body piece, so a refusal anywhere in the request is its answer.
"""

from __future__ import annotations

from server.config import Config
from server.protocol import NEED_DATA, HTTPCore, HTTPError, RequestHead

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
