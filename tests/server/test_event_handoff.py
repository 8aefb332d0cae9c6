"""The event mode's hand-offs between its loop and its pool, over real sockets.

A worker that finishes a request wakes the loop with one byte only when no
wake-up is already pending; a wrong order of "clear the flag" and "drain the
socket" loses wake-ups, and every request then waits for the loop's next
deadline sweep (``TICK``) instead of being answered at once.  Back-to-back
requests on keep-alive connections show it: the bound below is a third of
what a lost wake-up per request would cost, and far above a working loop's pace.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

from server.workers.event import TICK
from tests.support import free_port, lab_server

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
BODY_END = b"Hello Flask"
ROUNDS = 80
CLIENTS = 8


def back_to_back(port: int, rounds: int, failures: list[str]) -> None:
    """Send the next request the moment the previous response is in, as wrk does."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        for _ in range(rounds):
            conn.sendall(REQUEST)
            data = b""
            while not data.endswith(BODY_END):
                piece = conn.recv(65536)
                if not piece:
                    failures.append(f"closed after {data!r}")
                    return
                data += piece


def test_back_to_back_requests_on_several_connections_never_wait_for_the_sweep():
    port = free_port()
    with lab_server("event", port, "--threads", "4", stderr=subprocess.DEVNULL):
        failures: list[str] = []
        clients = [
            threading.Thread(target=back_to_back, args=(port, ROUNDS, failures)) for _ in range(CLIENTS)
        ]
        started = time.monotonic()
        for client in clients:
            client.start()
        for client in clients:
            client.join(120)
        elapsed = time.monotonic() - started
    assert not failures
    # A lost wake-up costs up to TICK per request: 80 requests per connection would take ~20 s;
    # a working loop answers the 640 requests in about a second even on two busy cores.
    assert elapsed < ROUNDS * TICK / 3, (
        f"{ROUNDS} requests on each of {CLIENTS} connections took {elapsed:.1f} s"
    )
