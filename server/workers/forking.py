"""A child process per connection, at most ``--max-children``.  The fork: :meth:`ForkingServer.handle`."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket

from server.base import BaseServer, flush_logs

log = logging.getLogger("wsgi_lab")


class ForkingServer(BaseServer):
    """A child process per connection, at most ``--max-children`` at once.

    The parent accepts, forks, closes its copy of the client socket and goes
    back to ``accept()``; the child serves that one connection (keep-alive
    included) and leaves with ``os._exit``.  SIGCHLD wakes the parent, which
    reaps every finished child with ``waitpid(WNOHANG)`` -- never blocking, no
    zombies.  At the limit the parent stops accepting until a child exits.
    Children see the parent's stop latch (an inherited pipe): idle ones close
    at once, busy ones after their request.

    Cost: a connection pays for a fork, the child's copy-on-write of every
    page its requests write (on CPython 3.11 a refcount change is a write) and
    its exit -- measured at ~1,700 page faults and ~15 ms of CPU per connection
    on a 2-vCPU VM.  Spread over a keep-alive connection's requests that is
    little; for short connections, or few requests per connection on a busy
    machine, it dominates the CPU per request.
    """

    mode = "forking"
    multiprocess = True
    extra_signals = (signal.SIGCHLD,)  # handled (so it wakes the loop); reaping happens in has_capacity

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.children: set[int] = set()
        # The app is loaded: keep the collector from touching (and so copying) every inherited
        # object in every child -- copy-on-write then shares the parent's memory for real.
        gc.freeze()

    def limits_note(self) -> str:
        return f" max-children={self.config.max_children}"

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        """Fork; the child serves ``sock`` and never returns, the parent returns at once."""
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes or memory: drop this client, keep serving
            log.error("cannot fork for %s: %s; closing it", peer, exc)
            sock.close()
            return
        if pid == 0:
            self._run_child(sock, peer)
        self.children.add(pid)
        sock.close()  # the child has its own copy; keeping ours would hold the connection open

    def _run_child(self, sock: socket.socket, peer: tuple) -> None:
        """Runs in the child; never returns into the parent's accept loop."""
        status = 1
        try:
            self.reset_signals_in_child()
            assert self.listener is not None
            self.listener.close()
            self.serve_connection(sock, peer)
            status = 0
        finally:
            flush_logs()
            os._exit(status)

    def reap(self) -> None:
        while self.children:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)

    def has_capacity(self) -> bool:
        self.reap()
        return len(self.children) < self.config.max_children

    def busy(self) -> bool:
        self.reap()
        return bool(self.children)

    def kill_workers(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
