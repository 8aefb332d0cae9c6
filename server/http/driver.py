"""The driver mixin: what the connection loop and :mod:`server.wsgi` call to send a response through a core.

A driver supplies only the byte moving (``_send``, ``read_body``).  What it
does NOT know: sockets (its subclasses do), HTTP's rules (the cores).
"""

from __future__ import annotations

import contextlib

from server.http.core import LlhttpCore
from server.http.errors import ClientGone
from server.http.events import RequestHead
from server.http.reference import H11Core


class CoreDriver:
    """What :func:`server.connection.serve_request` and :class:`server.wsgi.Response` use, over a core.

    A driver moves the core's bytes: it supplies ``_send`` (write, or raise
    :class:`ClientGone`) and ``read_body``; the rest -- encoding a response
    through the core, the current head -- is the same for every driver: the
    blocking :class:`server.connection.HTTPConnection` and the event mode's connections.
    """

    core: LlhttpCore | H11Core

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
