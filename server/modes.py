"""The three concurrency modes, side by side -- the only place with threads or ``os.fork``.

Each mode answers the same four questions (see :class:`server.base.BaseServer`):
what to do with an accepted connection, when to accept the next one, what to
do when a signal wakes the accept loop, and what to wait for at shutdown.  The
HTTP and WSGI work is identical in all three: :func:`server.connection.serve_connection`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import threading

from server.base import BaseServer, flush_logs
from server.event import EventServer

log = logging.getLogger("wsgi_lab")


class SingleServer(BaseServer):
    """One connection at a time, in the main thread: the next client waits in the listen backlog.

    Keep-alive without starving anyone: while other clients wait (the listening
    socket is readable) an idle connection is dropped at once, and a busy one
    keeps the worker for a short time slice, after which its next response
    says ``Connection: close`` -- round-robin, one connection at a time.
    """

    mode = "single"
    time_slice = 0.05  # seconds; bounds how long a waiting client waits per connection ahead of it

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        assert self.listener is not None
        self.serve_connection(sock, peer, yield_fd=self.listener.fileno(), time_slice=self.time_slice)


class ThreadedServer(BaseServer):
    """A thread per connection, at most ``--max-threads`` at once.

    Back-pressure: a semaphore slot is taken *before* ``accept()``, so when every
    thread is busy new clients wait in the kernel's backlog instead of piling
    up as threads.
    """

    mode = "threaded"
    multithread = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(self.config.max_threads)
        self.holding_slot = False
        self.threads: set[threading.Thread] = set()
        self.count = 0

    def limits_note(self) -> str:
        return f" max-threads={self.config.max_threads}"

    def wait_for_capacity(self) -> bool:
        # A timeout so that a stop signal is noticed even while every thread is busy.
        if not self.holding_slot:
            self.holding_slot = self.slots.acquire(timeout=0.5)
        return self.holding_slot

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        self.holding_slot = False  # the new thread owns the slot and releases it when done
        self.count += 1
        thread = threading.Thread(target=self._run, args=(sock, peer), name=f"conn-{self.count}", daemon=True)
        self.threads.add(thread)
        try:
            thread.start()
        except RuntimeError:  # the system refused another thread: drop this client, keep serving
            log.error("cannot start a thread for %s; closing it", peer)
            self.threads.discard(thread)
            self.slots.release()
            sock.close()

    def _run(self, sock: socket.socket, peer: tuple) -> None:
        try:
            self.serve_connection(sock, peer)
        finally:
            self.threads.discard(threading.current_thread())
            self.slots.release()

    def drain(self) -> None:
        for thread in list(self.threads):
            thread.join()


class ForkingServer(BaseServer):
    """A child process per connection, at most ``--max-children`` at once.

    The parent accepts, forks, closes its copy of the client socket and goes
    back to ``accept()``; the child serves that one connection (keep-alive
    included) and leaves with ``os._exit``.  SIGCHLD wakes the parent, which
    reaps every finished child with ``waitpid(WNOHANG)`` -- never blocking, no
    zombies.  At the limit the parent stops accepting until a child exits.
    """

    mode = "forking"
    multiprocess = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.children: set[int] = set()
        # The app is loaded: keep the collector from touching (and so copying) every inherited
        # object in every child -- copy-on-write then shares the parent's memory for real.
        gc.freeze()

    def limits_note(self) -> str:
        return f" max-children={self.config.max_children}"

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        # A Python-level handler (even a no-op) makes SIGCHLD write to the wakeup pipe.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def handle(self, sock: socket.socket, peer: tuple) -> None:
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes or memory: drop this client, keep serving
            log.error("cannot fork for %s: %s; closing it", peer, exc)
            sock.close()
            return
        if pid == 0:  # the child
            status = 1
            try:
                self._become_child()
                self.serve_connection(sock, peer)
                status = 0
            finally:
                flush_logs()
                os._exit(status)  # never return into the parent's accept loop
        self.children.add(pid)
        sock.close()  # the child has its own copy; keeping ours would hold the connection open

    def _become_child(self) -> None:
        """Drop what belongs to the parent: its listener, its wake pipe, its signal handling."""
        signal.set_wakeup_fd(-1)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum in (signal.SIGCHLD, signal.SIGALRM):
            signal.signal(signum, signal.SIG_DFL)
        # The parent decides when to stop (via the inherited stop latch), so a Ctrl-C sent
        # to the whole process group does not cut a request short.  A no-op handler, not
        # SIG_IGN, so that programs the app runs still get default signal handling.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: None)
        assert self.listener is not None
        self.listener.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

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

    def on_wake(self) -> None:
        self.reap()

    def wait_for_capacity(self) -> bool:
        self.reap()
        while len(self.children) >= self.config.max_children and not self.stop.is_set():
            self.wait_for_wake(1.0)  # SIGCHLD wakes us; the timeout is only a safety net
            self.reap()
        return not self.stop.is_set()

    def drain(self) -> None:
        # Children see the stop latch: idle ones close at once, busy ones after their request.
        self.reap()
        while self.children:
            self.wait_for_wake(0.5)
            self.reap()

    def kill_workers(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


MODES: dict[str, type[BaseServer]] = {
    "single": SingleServer,
    "threaded": ThreadedServer,
    "forking": ForkingServer,
    "event": EventServer,
}
