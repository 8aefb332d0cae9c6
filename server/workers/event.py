"""The event mode: one selector loop owns every connection; a thread pool runs only complete requests.

Apache httpd's "event" design, and waitress's: a slow or idle client costs a
socket and a few kilobytes, never a thread.  Policy choices and known limits:

- **One loop thread** owns every socket (non-blocking, :mod:`selectors`): it
  accepts, reads and parses request heads and bodies with a :mod:`server.http` core,
  writes responses out and enforces every timeout.  It never runs the app.
- **Only complete requests reach the pool** of ``--threads`` threads (default
  ``config.EVENT_THREADS``): the pool bounds how many app calls run at once,
  not how many clients are connected.
  Idle keep-alive connections and clients trickling a head hold no thread.
- **Bodies are read before the app runs**, as waitress does: spooled in memory
  up to ``SPOOL_MEMORY`` bytes, then to a temporary file, never past
  ``--limit-request-body`` (413).  So ``100 Continue`` goes out as soon as the
  head is accepted, not when the app first reads ``wsgi.input``.
- **Responses never block the loop.**  A worker encodes the response with the
  connection's core, writes it straight to the socket when nothing
  is queued, and queues the rest in the connection's output buffer, which the
  loop flushes when the socket is writable.  Above ``HIGH_WATER`` queued bytes
  the worker waits for the loop to drain it (up to ``--timeout`` without
  progress): a slow reader holds one worker thread, never the loop.
- **Timeouts as in the other modes**: ``--timeout`` for the first request and
  for a whole head once its first byte arrived (408) or a stalled body (408),
  ``--keep-alive`` between requests.  Deadlines are checked every ``TICK``
  seconds, so they fire up to ``TICK`` late.
- **At ``--max-connections``** the loop stops accepting; new clients wait in
  the kernel's backlog until a connection closes.
- **Graceful stop**: accept all that waits in the backlog (even beyond
  ``--max-connections``), close the listener, give every connection
  without a complete head ``STOP_GRACE`` seconds to finish it, close idle ones,
  let in-flight requests finish (their responses say ``Connection: close``),
  flush, exit.  ``--graceful-timeout`` bounds the whole stop.
- **Few hand-offs per request.**  The pool is ``--threads`` threads taking
  connections from one queue (no future per request); a connection stays
  registered for reading while its request runs, so a request costs no
  selector changes; a worker that has written its whole keep-alive response
  starts the connection's next cycle itself, so the loop hears nothing until
  the next request arrives; other endings wake the loop with one byte, and
  only when no wake-up is already pending.  Reads the selector announced and
  the workers' writes keep the GIL (:mod:`server.quickio`).
- Known limits: header parsing (llhttp through httptools, or h11: see
  ``--parser``) runs in the one loop thread, so it is serialised; while a
  request is in the pool the loop does not read its connection: the first
  bytes that arrive meanwhile (a pipelined request, a hang-up) make the loop
  stop watching it until the response is done, so they wait in the kernel
  buffer, and a client that hangs up is noticed only when
  its response is written.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import resource
import selectors
import socket
import tempfile
import threading
import time
from enum import Enum

from server.base import FD_EXHAUSTED, BaseServer
from server.config import EVENT_THREADS
from server.connection import LINGER_SECONDS, log_access, serve_request
from server.http import new_core
from server.http.driver import CoreDriver
from server.http.errors import ClientGone, HTTPError
from server.http.events import NEED_DATA
from server.quickio import RECV_SIZE, recv_now, send_now
from server.wsgi import connection_environ

log = logging.getLogger("wsgi_lab")

SPOOL_MEMORY = 1024 * 1024  # bytes of one request body kept in memory before it spills to a temp file
HIGH_WATER = 1024 * 1024  # queued response bytes above which the worker waits for the loop to flush
TICK = 0.25  # seconds between deadline sweeps
STOP_GRACE = 1.0  # seconds a connection without a complete head gets once the server stops
ACCEPT_BATCH = 64  # connections accepted per wake-up, so a flood of connects cannot starve the others
FD_RESERVE = 64  # file descriptors kept for logs, temp files, the pool and the app


class State(Enum):
    HEAD = "reading a request head"  # includes idle between requests
    BODY = "reading a request body"
    BUSY = "in the thread pool"
    CLOSING = "flushing the last response"
    LINGER = "reading what the client still sends after an error"


class Connection(CoreDriver):
    """One client: its socket, its HTTP core, its buffers and deadline.

    The loop owns everything here except while the state is ``BUSY``: then the
    worker thread owns ``core`` (it encodes the response), and the two share
    only ``out`` under ``lock``.  The worker's side is the interface that
    :func:`server.connection.serve_request` and :class:`server.wsgi.Response`
    use, the same as :class:`server.connection.HTTPConnection`'s.
    """

    def __init__(self, sock: socket.socket, peer: tuple, server: EventServer) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.remote = f"{peer[0]}:{peer[1]}" if peer else "-"
        self.server = server
        self.core = new_core(server.config)
        self.environ = connection_environ(
            sock.getsockname(), peer, server.config.server_software, True, False
        )
        self.state = State.HEAD
        self.requests = 0  # requests served so far on this connection
        self.head_started = 0.0  # when the first byte of the current head arrived, 0 = not yet
        self.deadline = time.monotonic() + server.config.timeout
        self.body: tempfile.SpooledTemporaryFile | None = None
        self.out = bytearray()
        self.lock = threading.Lock()
        self.flushed = threading.Condition(self.lock)  # notified when ``out`` shrinks or the socket dies
        self.dead = False  # the socket failed or was closed; a worker must stop writing
        self.keep: bool | None = None  # the worker's verdict when done: may another request follow?
        self.linger = False  # when closing: read briefly first, so the client sees our error response
        self.bytes_sent = 0  # per request, for the access log
        self.events = 0  # what the selector currently watches for
        self.read_paused = False  # BUSY and the client sent something: stop watching until the response

    @property
    def idle(self) -> bool:
        """Between requests with no byte of the next one: safe to close at any moment."""
        return self.state is State.HEAD and not self.core.head_started and self.requests > 0

    def wanted_events(self) -> int:
        # While BUSY the socket stays registered for reading (no selector change per request)
        # until the client sends something; those bytes are read once the response is done.
        busy_reading = self.state is State.BUSY and not self.read_paused
        reading = busy_reading or self.state in (State.HEAD, State.BODY, State.LINGER)
        return (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if self.out else 0)

    # --- the loop's side --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the socket takes now (loop thread); wake a worker waiting below ``HIGH_WATER``."""
        with self.lock:
            if not self.out:
                return
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError:
                self.dead = True
                self.out.clear()
                self.flushed.notify_all()
                raise ClientGone("send failed") from None
            del self.out[:sent]
            self.deadline = time.monotonic() + self.server.config.timeout
            self.flushed.notify_all()

    def queue(self, data: bytes) -> None:
        """Append bytes from the loop thread (100 Continue, error responses)."""
        with self.lock:
            self.out += data

    # --- the worker's side: what serve_request and wsgi.Response call -----------------------------

    def read_body(self) -> bytes:
        """The next piece of the (already complete) request body; b"" at its end."""
        return self.body.read(RECV_SIZE) if self.body is not None else b""

    def _send(self, data: bytes) -> None:
        """Write from a worker: straight to the socket if nothing is queued, else queue for the loop.

        Blocks only while more than ``HIGH_WATER`` bytes are queued, and at most
        ``--timeout`` seconds without the client reading anything.
        """
        if not data:
            return
        with self.lock:
            if self.dead:
                raise ClientGone("connection closed")
            sent = 0
            if not self.out:
                try:
                    sent = send_now(self.fd, data)  # keeps the GIL: the loop waits for it (server.quickio)
                except OSError as exc:
                    self.dead = True
                    raise ClientGone(str(exc)) from None
            self.bytes_sent += len(data)
            if sent < len(data):
                was_empty = not self.out
                self.out += memoryview(data)[sent:]
                if was_empty:
                    self.server.hand_back(self)  # the loop must start watching for "writable"
            while len(self.out) > HIGH_WATER and not self.dead:
                before = len(self.out)
                self.flushed.wait(self.server.config.timeout)
                if len(self.out) >= before and not self.dead:
                    self.dead = True
                    raise ClientGone("the client stopped reading the response")
            if self.dead:
                raise ClientGone("connection closed")


class EventServer(BaseServer):
    """Every connection in one selector loop; complete requests run in a bounded thread pool."""

    mode = "event"
    multithread = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.threads = self.config.threads or EVENT_THREADS
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.max_connections = self.config.max_connections or max(1, soft_limit - FD_RESERVE)
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, Connection] = {}
        # Complete requests wait here for a pool thread; None tells a thread to leave.
        self.requests: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self.pool: list[threading.Thread] = []
        self.ctx = self.context()
        self.accepting = False
        self.draining = False  # the loop has begun the graceful stop
        self.next_sweep = 0.0
        # Workers hand finished requests (and newly queued output) back through this deque,
        # and write a byte to the socketpair so that a sleeping select() returns.
        self.woken: collections.deque[Connection] = collections.deque()
        self.wake_pending = False  # a byte is in the socketpair already: no need for another
        self.waker_read, self.waker_write = socket.socketpair()
        self.waker_read.setblocking(False)
        self.waker_write.setblocking(False)

    def limits_note(self) -> str:
        return f" threads={self.threads} max-connections={self.max_connections}"

    # --- the loop --------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Hook: run the loop until the stop latch is set (overrides the accept loop).  Main thread."""
        assert self.listener is not None
        for n in range(self.threads):
            thread = threading.Thread(target=self._pool_thread, name=f"event-worker_{n}", daemon=True)
            thread.start()
            self.pool.append(thread)
        self.selector.register(self._wake_read, selectors.EVENT_READ, "signal")
        self.selector.register(self.waker_read, selectors.EVENT_READ, "waker")
        self._accept_on()
        while not self.stop.is_set():
            self._turn()

    def finish_queued(self) -> None:
        """Hook: the graceful stop, run by the loop until every connection is finished.  Main thread.

        Serves what waits in the backlog, closes idle connections and lets
        in-flight requests finish and flush (see :meth:`_begin_stop`); the
        graceful-timeout watchdog bounds it (``handle_signals`` raises).
        """
        self.handle_signals()
        self._begin_stop()
        while self.connections:
            self._turn()
        for _ in self.pool:
            self.requests.put(None)

    def _turn(self) -> None:
        """One turn of the loop: wait for sockets (at most ``TICK``), serve them, enforce deadlines."""
        for key, events in self.selector.select(timeout=TICK):
            self._dispatch(key, events)
        now = time.monotonic()
        if now >= self.next_sweep:
            self._sweep(now)
            self.next_sweep = now + TICK

    def _dispatch(self, key: selectors.SelectorKey, events: int) -> None:
        if key.data == "listener":
            self._accept()
        elif key.data == "signal":
            self.drain_wake_pipe()
            self.handle_signals()  # may raise ImmediateExit: a second SIGINT, the graceful timeout
        elif key.data == "waker":
            self._take_wakeups()
        else:
            conn: Connection = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    conn.flush()
                if events & selectors.EVENT_READ and self.connections.get(conn.fd) is conn:
                    with conn.lock:  # a worker may be ending the request (see _next_cycle_here)
                        busy = conn.read_paused = conn.state is State.BUSY
                    if not busy:  # if busy, read once the response is done (see wanted_events)
                        self._read(conn)
                self._after_io(conn)
            except ClientGone:
                self._close(conn)
            except Exception:
                log.exception("%s: unexpected error in the event loop; closing the connection", conn.remote)
                self._close(conn)

    # --- accepting -------------------------------------------------------------------------------

    def _accept_on(self) -> None:
        if not self.accepting and not self.draining and self.listener is not None:
            self.selector.register(self.listener, selectors.EVENT_READ, "listener")
            self.accepting = True

    def _accept_off(self) -> None:
        if self.accepting:
            self.selector.unregister(self.listener)
            self.accepting = False

    def _accept(self, limit: int = ACCEPT_BATCH, cap: int | None = None) -> None:
        """Accept up to ``limit`` waiting clients while fewer than ``cap`` (default: the limit) are open."""
        assert self.listener is not None
        cap = self.max_connections if cap is None else cap
        for _ in range(limit):
            if len(self.connections) >= cap:
                self._accept_off()  # back-pressure: the rest wait in the kernel's backlog
                return
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client gave up while waiting: take the next one
                continue
            except OSError as exc:
                if exc.errno not in FD_EXHAUSTED:
                    raise
                self.shed(exc)  # out of descriptors: accept-and-close one client, never spin
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, peer, self)
            self.connections[conn.fd] = conn
            self._watch(conn)

    # --- reading ---------------------------------------------------------------------------------

    def _read(self, conn: Connection) -> None:
        try:
            data = recv_now(conn.fd)  # the selector said readable; keeps the GIL (server.quickio)
        except BlockingIOError:
            return
        except OSError as exc:
            raise ClientGone(str(exc)) from None
        if conn.state is State.LINGER:
            if not data:
                self._close(conn)
            return
        if conn.state is State.HEAD and not conn.core.head_started and data:
            conn.head_started = time.monotonic()
            conn.deadline = conn.head_started + self.config.timeout
        elif conn.state is State.BODY:
            conn.deadline = time.monotonic() + self.config.timeout
        conn.core.receive(data)
        self._parse(conn)

    def _parse(self, conn: Connection) -> None:
        """Advance the connection as far as the bytes already received allow."""
        try:
            if conn.state is State.HEAD:
                self._parse_head(conn)
            elif conn.state is State.BODY:
                self._parse_body(conn)
        except HTTPError as exc:
            self._refuse(conn, exc)

    def _parse_head(self, conn: Connection) -> None:
        head = conn.core.next_head()
        if head is NEED_DATA:
            return
        if head is None:  # the client closed between requests
            self._close(conn)
            return
        conn.bytes_sent = 0
        conn.state = State.BODY
        conn.deadline = time.monotonic() + self.config.timeout
        if head.has_body:
            conn.queue(conn.core.continue_response())  # we read the body now, so the client may send it
        self._parse_body(conn)  # a request without a body completes at once

    def _parse_body(self, conn: Connection) -> None:
        try:
            while (data := conn.core.next_body()) is not NEED_DATA:
                if not data:  # the end of the body : the request is complete
                    if conn.body is not None:
                        conn.body.seek(0)
                    self._submit(conn)
                    return
                if conn.body is None:
                    conn.body = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 (closed after the request)
                conn.body.write(data)  # type: ignore[arg-type]
        except ClientGone:
            self._close(conn)

    def _refuse(self, conn: Connection, exc: HTTPError) -> None:
        """Answer a request we cannot serve with its 4xx, then close (after lingering)."""
        log.info("%s: %d %s", conn.remote, exc.status, exc.reason)
        response = conn.core.error_response(exc.status, exc.reason)
        conn.queue(response)
        log_access(conn.remote, "-", exc.status, len(response), 0.0)
        self._finish(conn, linger=True)

    # --- the thread pool -------------------------------------------------------------------------

    def _submit(self, conn: Connection) -> None:
        """Hand a complete request to the pool; the loop stops reading this connection meanwhile."""
        conn.state = State.BUSY
        conn.head_started = 0.0
        self.requests.put(conn)

    def _pool_thread(self) -> None:
        """A pool thread: run complete requests until told to leave."""
        while (conn := self.requests.get()) is not None:
            self._run_request(conn)

    def _run_request(self, conn: Connection) -> None:
        """Runs in a worker thread: the app, then hand the connection back to the loop."""
        head = conn.core.head
        assert head is not None
        keep = False
        try:
            keep = serve_request(conn, head, conn.environ, self.ctx, conn.remote, self._close_after)
        except Exception:
            log.exception("%s: unexpected error serving %s", conn.remote, head.request_line)
        finally:
            if conn.body is not None:
                conn.body.close()
                conn.body = None
            if not (keep and self._next_cycle_here(conn)):
                with conn.lock:
                    conn.keep = keep
                self.hand_back(conn)

    def _next_cycle_here(self, conn: Connection) -> bool:
        """From a worker, after a keep-alive response: start the next cycle without waking the loop.

        The common case -- all output written, nothing received meanwhile, not
        stopping -- needs no hand-back: the socket is still registered for
        reading, so setting the state to HEAD is all it takes, and the loop
        simply sees the next request arrive.  Anything else (queued output,
        bytes that arrived while busy, a pipelined request, a stop) goes
        through :meth:`_request_done` in the loop.  Under ``conn.lock``, which
        the loop also holds to decide that a busy connection's input must wait.
        """
        core = conn.core
        with conn.lock:
            if conn.read_paused or conn.out or conn.dead or self.stop.is_set():
                return False
            if core.input_buffered or not core.start_next_cycle():  # False unless both sides are done
                return False
            conn.requests += 1
            conn.deadline = time.monotonic() + self.config.keep_alive
            conn.state = State.HEAD
        return True

    def _close_after(self) -> bool:
        return not self.config.keep_alive or self.stop.is_set()

    def hand_back(self, conn: Connection) -> None:
        """From a worker thread: make the loop look at ``conn`` (request done or output queued).

        The append comes before the flag is read, and the loop clears the flag
        after draining the socket and before emptying the deque: a connection
        is never left in the deque without a byte on its way.
        """
        self.woken.append(conn)
        if not self.wake_pending:
            self.wake_pending = True
            with contextlib.suppress(BlockingIOError):  # full means a wake-up is already pending
                self.waker_write.send(b"x")

    def _take_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self.waker_read.recv(4096):
                pass
        # Only now, with the bytes gone: a worker that saw the flag set relies on a byte that is
        # either drained here (its connection is already in the deque) or still to come.
        self.wake_pending = False
        while self.woken:
            conn = self.woken.popleft()
            if self.connections.get(conn.fd) is not conn:
                continue  # closed meanwhile
            try:
                if conn.state is State.BUSY and conn.keep is not None and self._request_done(conn):
                    continue
                self._after_io(conn)
            except ClientGone:
                self._close(conn)

    def _request_done(self, conn: Connection) -> bool:
        """Is the worker finished with ``conn``?  If so, start the next cycle or close; True if handled."""
        with conn.lock:
            if conn.keep is None:
                return False
            keep, conn.keep = conn.keep, None
        conn.requests += 1
        conn.read_paused = False
        if not (keep and not self.draining and conn.core.response_done and conn.core.start_next_cycle()):
            self._finish(conn, linger=conn.core.input_pending)
            return True
        conn.state = State.HEAD
        conn.deadline = time.monotonic() + self.config.keep_alive
        if conn.core.head_started:  # a pipelined request is already buffered
            conn.head_started = time.monotonic()
            conn.deadline = conn.head_started + self.config.timeout
            self._parse(conn)
        self._after_io(conn)
        return True

    # --- writing and closing ---------------------------------------------------------------------

    def _finish(self, conn: Connection, linger: bool) -> None:
        """Close once the queued output is flushed; with ``linger``, read a little first (see protocol)."""
        conn.state = State.CLOSING
        conn.linger = linger
        conn.deadline = time.monotonic() + self.config.timeout
        self._after_io(conn)

    def _after_io(self, conn: Connection) -> None:
        """Move a closing connection on once its output is out, and watch what it now waits for."""
        if self.connections.get(conn.fd) is not conn:
            return
        if conn.state is State.CLOSING and not conn.out:
            if not conn.linger:
                self._close(conn)
                return
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)
            conn.state = State.LINGER
            conn.deadline = time.monotonic() + LINGER_SECONDS
        self._watch(conn)

    def _watch(self, conn: Connection) -> None:
        with conn.lock:
            events = conn.wanted_events()
        if events == conn.events:
            return
        if conn.events == 0:
            self.selector.register(conn.sock, events, conn)
        elif events == 0:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def _close(self, conn: Connection) -> None:
        if self.connections.pop(conn.fd, None) is None:
            return
        if conn.events:
            self.selector.unregister(conn.sock)
            conn.events = 0
        with conn.lock:
            conn.dead = True
            conn.flushed.notify_all()
        conn.sock.close()
        if conn.state is not State.BUSY and conn.body is not None:
            conn.body.close()
        if len(self.connections) < self.max_connections:
            self._accept_on()

    # --- deadlines and stopping ------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        """Enforce every connection's deadline (every ``TICK`` seconds)."""
        for conn in [c for c in self.connections.values() if c.deadline <= now]:
            if conn.state is State.BUSY or conn.deadline > now:
                continue  # the worker enforces its own write timeout (or just ended the request)
            if conn.state is State.HEAD and conn.core.head_started and not self.draining:
                self._refuse(conn, HTTPError(408, "timed out reading the request head"))
            elif conn.state is State.BODY:
                self._refuse(conn, HTTPError(408, "timed out reading the request body"))
            else:  # idle, lingering, or a client that stopped reading its last response
                self._close(conn)

    def _begin_stop(self) -> None:
        """Serve what waits in the backlog, close idle connections, let the rest finish."""
        self.draining = True
        if self.listener is not None:
            # Everything already queued is served, even beyond --max-connections: the backlog
            # bounds it, and closing the listener would otherwise reset those clients.
            self._accept(limit=self.config.backlog, cap=self.max_connections + self.config.backlog)
            self._accept_off()
            self.listener.close()  # from now on new clients are refused, not left in a dead backlog
        grace = time.monotonic() + STOP_GRACE
        for conn in list(self.connections.values()):
            with conn.lock:  # a worker ending a request checks the stop under this lock
                idle = conn.idle
            if idle:
                self._close(conn)
            elif conn.state is State.HEAD:
                conn.deadline = min(conn.deadline, grace)
        left, limit = len(self.connections), self.config.graceful_timeout
        log.info("stopping: %d connection(s) finishing, up to %gs", left, limit)
