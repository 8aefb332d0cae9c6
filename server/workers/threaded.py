"""A thread per connection, at most ``--max-threads`` at once."""

from __future__ import annotations

import logging
import socket
import threading

from server.base import BaseServer

log = logging.getLogger("wsgi_lab")


class ThreadedServer(BaseServer):
    """A thread per connection, at most :attr:`max_threads` at once.

    Back-pressure: at the limit the loop stops accepting, so new clients wait
    in the kernel's backlog instead of piling up as threads; a finishing thread
    wakes the loop.  A prefork worker with ``--threads N`` runs this same model
    (gunicorn's gthread shape), so the pool logic exists once.
    """

    mode = "threaded"
    multithread = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_threads = self.config.max_threads
        self.threads: set[threading.Thread] = set()
        self.count = 0

    def limits_note(self) -> str:
        return f" max-threads={self.max_threads}"

    def has_capacity(self) -> bool:
        return len(self.threads) < self.max_threads

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        """Start a thread that serves the connection; returns at once."""
        self.count += 1
        thread = threading.Thread(target=self._run, args=(sock, peer), name=f"conn-{self.count}", daemon=True)
        self.threads.add(thread)
        try:
            thread.start()
        except RuntimeError:  # the system refused another thread: drop this client, keep serving
            log.error("cannot start a thread for %s; closing it", peer)
            self.threads.discard(thread)
            sock.close()

    def _run(self, sock: socket.socket, peer: tuple) -> None:
        """Runs in the connection's thread; wakes the main loop when done (capacity is back)."""
        try:
            self.serve_connection(sock, peer)
        finally:
            self.threads.discard(threading.current_thread())
            self.wake()

    def busy(self) -> bool:
        return bool(self.threads)
