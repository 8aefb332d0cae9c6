"""The event mode over real sockets: slow and idle clients hold no thread, the loop never blocks.

Each test starts ``python -m server --mode event`` as a process (stopped by pid)
and talks to it with raw sockets where the behaviour under test is a socket's
(a head never finished, a response never read).  Margins are generous: the
machine has two shared cores.  What every mode must do (keep-alive, pipelining,
refusals, 408 timeouts, 100 Continue) is tested for this mode too in
test_http.py; this module keeps what only the event design promises.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import concurrent_sleeps, free_port, get, lab_server, stop

SLOWLORIS = 300
IDLE = 200


def server(port: int, *extra: str, **popen):
    popen.setdefault("stderr", subprocess.DEVNULL)
    return lab_server("event", port, *extra, **popen)


def raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length body from a keep-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


@contextlib.contextmanager
def open_sockets(port: int, n: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def thread_count(pid: int) -> int:
    return psutil.Process(pid).num_threads()


def test_fd_limit_allows_the_connection_counts():
    # Client and server run on this machine: each connection costs a descriptor on both sides.
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= SLOWLORIS + 100


def test_slowloris_connections_do_not_starve_a_normal_client():
    port = free_port()
    with server(port, "--threads", "4") as proc, open_sockets(port, SLOWLORIS) as slow:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: slow\r\n")  # a head that never ends
        time.sleep(0.5)
        started = time.monotonic()
        status, _, _ = get(port, "/health", timeout=5)
        assert status == 200
        assert time.monotonic() - started < 1.0
        assert thread_count(proc.pid) <= 1 + 4  # the loop and at most the pool: none per slow client


def test_ten_concurrent_sleeps_run_in_parallel_in_the_pool():
    port = free_port()
    with server(port, "--threads", "10") as proc:
        get(port, "/health")
        elapsed, headers = concurrent_sleeps(port, n=10, seconds=0.5)
        assert 0.5 <= elapsed < 1.5, elapsed  # serial would be 5 s
        assert {h["x-worker-pid"] for h in headers} == {str(proc.pid)}
        assert len({h["x-worker-thread"] for h in headers}) >= 5
        assert {h["x-server-model"] for h in headers} == {"lab-event"}


def test_idle_keep_alive_connections_hold_no_thread():
    port = free_port()
    with server(port, "--threads", "4", "--keep-alive", "30") as proc, open_sockets(port, IDLE) as idle:
        for sock in idle:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in idle:
            assert b" 200 " in read_response(sock).split(b"\r\n")[0]
        time.sleep(0.3)
        assert thread_count(proc.pid) <= 1 + 4, thread_count(proc.pid)
        for sock in idle[:20]:  # still open and served on the same connection
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b" 200 " in read_response(sock).split(b"\r\n")[0]


def server_send_queue(port: int) -> int:
    """Bytes queued in the kernel on the server's side of connections to ``port`` (from /proc/net/tcp)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            total += int(fields[4].split(":")[0], 16)
    return total


@pytest.mark.slow
def test_a_slow_reader_does_not_stop_other_clients():
    port = free_port()
    with server(port, "--threads", "2") as proc:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", port))
        try:
            # About 10 MB of chunked responses that the client never reads.
            request = b"GET /stream?chunks=1000&delay=0 HTTP/1.1\r\nHost: x\r\n\r\n"
            slow.sendall(request * 1000)
            deadline = time.monotonic() + 20
            while server_send_queue(port) < 1_000_000 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert server_send_queue(port) >= 1_000_000  # the kernel's buffers are full: writes would block
            for _ in range(5):
                started = time.monotonic()
                status, _, body = get(port, "/stream?chunks=50&delay=0", timeout=5)
                assert status == 200 and body.count(b"chunk") == 50
                assert time.monotonic() - started < 1.0
            assert proc.poll() is None
        finally:
            slow.close()


def test_max_connections_stops_accepting_until_one_closes():
    port = free_port()
    with server(port, "--max-connections", "3"), open_sockets(port, 3) as held:
        time.sleep(0.3)  # the server has accepted all three
        with socket.create_connection(("127.0.0.1", port), timeout=10) as waiting:
            waiting.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            waiting.settimeout(1.0)
            with pytest.raises(TimeoutError):
                waiting.recv(100)  # still in the backlog
            held[0].close()
            waiting.settimeout(5.0)
            assert waiting.recv(100).startswith(b"HTTP/1.1 200")


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight_and_exits_0():
    port = free_port()
    with server(port, "--threads", "4", stderr=subprocess.PIPE) as proc:
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(idle)
        results: list[int] = []
        workers = [
            threading.Thread(target=lambda: results.append(get(port, "/sleep?s=1.5", timeout=15)[0]))
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        time.sleep(0.6)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.join(15)
        assert results == [200] * 4
        assert proc.wait(10) == 0
        assert time.monotonic() - sent < 4.0  # not the 5 s keep-alive of the idle connection
        assert idle.recv(100) == b""  # the idle connection was closed
        idle.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert "SIGTERM" in proc.stderr.read().decode()
    stop(proc)


def test_sigterm_serves_a_request_waiting_in_the_backlog():
    port = free_port()
    with server(port, "--max-connections", "1") as proc:
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)  # takes the only slot
        time.sleep(0.3)
        queued = socket.create_connection(("127.0.0.1", port), timeout=10)  # waits in the backlog
        queued.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := queued.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower(), answer
        assert proc.wait(10) == 0
        silent.close()
        queued.close()
