"""One connection at a time, in the main thread: the next client waits in the listen backlog."""

from __future__ import annotations

import socket

from server.base import BaseServer

TIME_SLICE = 0.05  # seconds; bounds how long a waiting client waits per connection ahead of it


class SingleServer(BaseServer):
    """One connection at a time, in the main thread: the next client waits in the listen backlog.

    Keep-alive without starving anyone: while other clients wait (the listening
    socket is readable) an idle connection is dropped at once, and a busy one
    keeps the worker for a short time slice, after which its next response
    says ``Connection: close`` -- round-robin, one connection at a time.
    """

    mode = "single"
    yield_slice = TIME_SLICE

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        """Serve the connection to its end right here, in the main thread."""
        self.serve_connection(sock, peer)
