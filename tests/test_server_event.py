"""The event mode over real sockets: slow and idle clients hold no thread, the loop never blocks.

Each test starts ``python -m server --mode event`` as a process (stopped by pid)
and talks to it with raw sockets where the behaviour under test is a socket's
(a head never finished, a response never read).  Margins are generous: the
machine has two shared cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
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


def test_keep_alive_and_pipelining():
    port = free_port()
    with server(port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        conn.getresponse().read()
        first = conn.sock
        conn.request("GET", "/whoami")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["model"] == "lab-event"
        assert conn.sock is first  # the same connection carried both
        conn.close()
        requests = [b"GET /health?n=0", b"GET /health?n=1", b"GET /health?n=2"]
        pipelined = b"".join(line + b" HTTP/1.1\r\nHost: x\r\n\r\n" for line in requests[:2])
        pipelined += requests[2] + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = raw(port, pipelined)  # all three in one write; the server closes after the third
        assert answer.count(b"HTTP/1.1 200 OK") == 3, answer


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


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", b"400"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", b"431"),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", b"413"),
        (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"c" * 2000,
            b"413",
        ),
    ],
)
def test_malformed_requests_get_4xx_and_the_server_keeps_serving(request_bytes, status):
    port = free_port()
    with server(port, "--limit-request-body", "1000"):
        answer = raw(port, request_bytes)
        assert answer.split(b"\r\n")[0].split(b" ")[1] == status, answer[:200]
        assert b"connection: close" in answer.lower()
        assert get(port, "/health")[0] == 200


def test_a_trickled_head_times_out_with_408():
    port = free_port()
    with server(port, "--timeout", "1"):
        started = time.monotonic()
        answer = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 0.9 <= time.monotonic() - started < 4.0


def test_idle_keep_alive_connection_is_closed_after_keep_alive_seconds():
    port = free_port()
    with server(port, "--keep-alive", "1"), socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock)
        started = time.monotonic()
        assert sock.recv(100) == b""  # the server closed it
        assert 0.9 <= time.monotonic() - started < 4.0


def test_100_continue_then_the_body():
    port = free_port()
    body = os.urandom(300_000)  # above the in-memory spool: exercises the temporary file
    with server(port), socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert sock.recv(1000).startswith(b"HTTP/1.1 100 ")  # only then is the body sent
        sock.sendall(body)
        head = b""
        while b"}" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(head.split(b"\r\n\r\n", 1)[1])["sha256"] == hashlib.sha256(body).hexdigest()


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


def test_a_stalled_body_times_out_with_408():
    port = free_port()
    with server(port, "--timeout", "1"):
        started = time.monotonic()
        answer = raw(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 0.9 <= time.monotonic() - started < 4.0


def get_ignoring_errors(port: int, target: str) -> None:
    with contextlib.suppress(OSError):
        get(port, target, timeout=30)


def test_graceful_timeout_bounds_the_stop():
    port = free_port()
    with server(port, "--graceful-timeout", "1", stderr=subprocess.PIPE) as proc:
        threading.Thread(target=get_ignoring_errors, args=(port, "/sleep?s=20"), daemon=True).start()
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - sent < 5
        assert "graceful timeout" in proc.stderr.read().decode()
