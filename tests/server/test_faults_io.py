"""Faults over real sockets, in every mode: clients that vanish, applications that raise.

A client that goes away mid-head, mid-body or mid-response costs the server at
most one log line and nothing else; an application that raises gets a 500 when
nothing was sent yet and a cut (closed) response otherwise.  After each fault
the same server must answer a normal request.  The servers are the session's
``mode_server`` (conftest.py), one per mode, running ``tests.apps:validated`` with the default
parser (httptools where installed), and a twin of each on h11.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ModeServer, serve_test_apps

SETTLE = 0.5  # seconds for the server to notice a vanished client and log about it


@pytest.fixture(scope="module")
def h11_twin(mode_server, tmp_path_factory) -> Iterator[ModeServer]:
    """The same server on the pure-Python parser."""
    folder = tmp_path_factory.mktemp(f"server-{mode_server.mode}-h11")
    with serve_test_apps(mode_server.mode, folder, "--parser", "h11") as twin:
        yield twin


@pytest.fixture(params=["auto", "h11"])
def server(request, mode_server) -> ModeServer:
    return mode_server if request.param == "auto" else request.getfixturevalue("h11_twin")


def get(port: int, target: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", target)
    return conn.getresponse()


def still_serving(server: ModeServer) -> None:
    assert server.proc.poll() is None, f"the {server.mode} server died"
    reply = get(server.port, "/health")
    assert reply.status == 200 and reply.read() == b"ok"


def log_after(log: Path, fault) -> list[str]:
    """The log lines the server wrote while ``fault()`` ran and shortly after."""
    before = log.stat().st_size
    fault()
    time.sleep(SETTLE)
    with log.open("rb") as f:
        f.seek(before)
        return f.read().decode(errors="replace").splitlines()


def vanish(port: int, data: bytes, read: int = 0, reset: bool = False) -> None:
    """Connect, send ``data``, read ``read`` bytes, then go away (with a TCP reset if ``reset``)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(data)
        got = b""
        while len(got) < read:
            got += sock.recv(read - len(got))
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


# --- the client vanishes ---------------------------------------------------------------------------

VANISHING = {
    "mid-head": dict(data=b"GET /health HTTP/1.1\r\nHost: x\r\nX-Par"),
    "mid-head with reset": dict(data=b"GET /health HTTP/1.1\r\nHo", reset=True),
    "mid-body": dict(data=b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"b" * 3000),
    "mid-chunked-body": dict(
        data=b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc"
    ),
    "mid-response (big blocks)": dict(data=b"GET /big?mb=50 HTTP/1.1\r\nHost: x\r\n\r\n", read=100),
    "mid-response (many small writes)": dict(
        data=b"GET /stream?n=500000 HTTP/1.1\r\nHost: x\r\n\r\n", read=100
    ),
    "mid-response with reset": dict(data=b"GET /big?mb=50 HTTP/1.1\r\nHost: x\r\n\r\n", read=100, reset=True),
}


@pytest.mark.parametrize("how", VANISHING.values(), ids=VANISHING.keys())
def test_a_vanishing_client_costs_at_most_a_log_line(server, how):
    port, log = server.port, server.log
    lines = log_after(log, lambda: vanish(port, **how))
    assert len(lines) <= 1, lines
    assert not any("Traceback" in line for line in lines), lines
    still_serving(server)


# --- the application raises ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/error-before", "deliberate failure before the response started"),
        ("/error-after-start", "deliberate failure after start_response"),
        ("/error-in-iterator", "deliberate failure after the response started"),
    ],
)
def test_an_app_that_raises_before_anything_is_sent_gets_500(server, target, message):
    port, log = server.port, server.log
    replies = []
    lines = log_after(log, lambda: replies.append(get(port, target)))
    assert replies[0].status == 500 and replies[0].getheader("Connection") == "close"
    assert any(message in line for line in lines), lines
    still_serving(server)


def test_an_app_that_raises_after_sending_gets_a_cut_response(server):
    port = server.port
    reply = get(port, "/error-after")
    assert reply.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        reply.read()
    assert cut.value.partial == b"first part\n"
    still_serving(server)


def test_an_app_whose_close_raises_has_sent_a_complete_response(server):
    port, log = server.port, server.log
    replies = []
    lines = log_after(log, lambda: replies.append(get(port, "/error-in-close")))
    assert replies[0].status == 200 and replies[0].read() == b"complete\n"
    assert any("deliberate failure in close()" in line for line in lines), lines
    still_serving(server)


def test_many_faults_in_a_row_leave_the_server_serving(server):
    port = server.port
    for _ in range(10):
        with contextlib.suppress(OSError):
            vanish(port, b"GET /big?mb=50 HTTP/1.1\r\nHost: x\r\n\r\n", read=10, reset=True)
        reply = get(port, "/error-before")
        assert reply.status == 500
        reply.read()
    still_serving(server)
