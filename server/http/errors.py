"""What goes wrong on a connection, as exceptions: a refused request, a gone client, a bad response.

What it does NOT know: when each is raised or how it is answered (the cores
and their drivers).
"""

from __future__ import annotations

# A refusal's reason goes into one log line and the error body: at most this many characters of it.
REASON_MAX_CHARS = 200


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


class ResponseError(Exception):
    """The application's response does not fit its own framing (e.g. wrong Content-Length)."""
