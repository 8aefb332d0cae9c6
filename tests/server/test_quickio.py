"""server.quickio: non-blocking reads and writes that keep the GIL, over a real socket pair."""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest

from server import quickio


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_recv_now_returns_what_is_there_and_never_waits(pair):
    a, b = pair
    b.settimeout(None)  # even on a blocking socket: MSG_DONTWAIT
    with pytest.raises(BlockingIOError):
        quickio.recv_now(b.fileno())
    a.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert quickio.recv_now(b.fileno()) == b"GET / HTTP/1.1\r\n\r\n"
    a.shutdown(socket.SHUT_WR)
    assert quickio.recv_now(b.fileno()) == b""  # the peer's end of input


def test_send_now_writes_what_fits_and_returns_zero_when_full(pair):
    a, b = pair
    assert quickio.send_now(a.fileno(), b"hello") == 5
    assert b.recv(10) == b"hello"
    total = 0
    while (sent := quickio.send_now(a.fileno(), b"x" * 65536)) > 0:
        total += sent
    assert sent == 0 and total > 0  # the buffer is full: nothing written, nothing blocked


def test_send_now_to_a_closed_peer_raises_instead_of_killing_the_process(pair):
    a, b = pair
    b.close()
    with pytest.raises(OSError):
        for _ in range(3):
            quickio.send_now(a.fileno(), b"data")


@pytest.mark.skipif(quickio.ctypes is None, reason="no ctypes here: the functions release the GIL")
def test_the_calls_keep_the_gil(pair):
    """A thread waiting for the GIL does not run while these calls are made (their whole point)."""
    a, b = pair
    a.sendall(b"x" * 1000)
    ran = []
    stop = threading.Event()

    def spinner():
        while not stop.is_set():
            ran.append(1)

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.5)  # otherwise the GIL changes hands only when a call releases it
    try:
        thread = threading.Thread(target=spinner)
        thread.start()
        time.sleep(0.05)  # releases the GIL: the spinner starts, and holds it until forced to switch
        before = len(ran)
        for _ in range(200):
            quickio.send_now(a.fileno(), b"y")
            quickio.recv_now(b.fileno())
            if len(ran) != before:
                break  # a call let the spinner in (and we waited for the GIL to come back)
        during = len(ran) - before
    finally:
        stop.set()
        sys.setswitchinterval(old)
    thread.join()
    assert during == 0, f"another thread ran {during} times during calls that should keep the GIL"
