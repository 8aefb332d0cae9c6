"""Signals: handlers only record, the loop acts; a graceful stop serves the backlog; escalation is immediate.

Real processes and sockets, except the first tests, which call the handler in
process to show that it neither logs nor exits.  The graceful timeout is tested
here for every mode.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import signal
import subprocess
import threading
import time

import psutil
import pytest

from server.base import ImmediateExit
from server.config import MODES, Config
from server.workers.single import SingleServer
from tests.support import free_port, lab_server


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def records():
    logger = logging.getLogger("wsgi_lab")
    handler = Records()
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_the_handler_records_and_the_loop_logs(records):
    server = SingleServer(lambda environ, start_response: [], Config(graceful_timeout=30))
    server._on_signal(signal.SIGTERM, None)
    assert records.messages == []  # nothing logged inside the handler
    assert server.stop.is_set() and list(server.signals) == [signal.SIGTERM]
    server.handle_signals()
    assert records.messages == ["SIGTERM: stopping gracefully"]
    server._on_signal(signal.SIGINT, None)  # second stop signal, main thread not serving: recorded only
    assert len(records.messages) == 1
    with pytest.raises(ImmediateExit) as exc:
        server.handle_signals()
    assert exc.value.status == 128 + signal.SIGINT


def test_escalation_while_the_main_thread_serves_unwinds_it(records):
    server = SingleServer(lambda environ, start_response: [], Config(graceful_timeout=30))
    server._on_signal(signal.SIGINT, None)
    server._main_thread_serving = True
    with pytest.raises(ImmediateExit) as exc:
        server._on_signal(signal.SIGINT, None)
    assert exc.value.status == 128 + signal.SIGINT and records.messages == []
    with pytest.raises(ImmediateExit) as exc:
        server._on_signal(signal.SIGALRM, None)  # the graceful timeout
    assert exc.value.status == 0 and "graceful timeout" in exc.value.reason


def sleep_request(port: int, seconds: float, results: list, barrier: threading.Barrier | None = None) -> None:
    if barrier is not None:
        barrier.wait()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", f"/sleep?s={seconds}")
        r = conn.getresponse()
        r.read()
        results.append(r.status)
    except (OSError, http.client.HTTPException) as exc:
        results.append(repr(exc))
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "extra"), [("threaded", ()), ("forking", ()), ("prefork", ("-w", "4"))])
def test_sigterm_serves_every_connection_already_queued(mode, extra):
    port = free_port()
    with lab_server(mode, port, *extra, stderr=subprocess.PIPE) as proc:
        results: list = []
        barrier = threading.Barrier(20)
        args = (port, 1, results, barrier)
        clients = [threading.Thread(target=sleep_request, args=args) for _ in range(20)]
        for client in clients:
            client.start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        for client in clients:
            client.join(60)
        assert results == [200] * 20, results
        assert proc.wait(30) == 0
        assert "SIGTERM: stopping gracefully" in proc.stderr.read().decode()


# single: the request runs in the main thread, so the timeout must interrupt it (ImmediateExit);
# prefork: the arbiter kills its workers; event: the loop stops with the pool busy.
@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_graceful_timeout_bounds_the_wait_for_a_request_in_flight(mode):
    port = free_port()
    with lab_server(mode, port, "--graceful-timeout", "1", stderr=subprocess.PIPE) as proc:
        results: list = []
        threading.Thread(target=sleep_request, args=(port, 20, results), daemon=True).start()
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - sent < 5  # about the 1 s of --graceful-timeout, not the 20 s sleep
        assert "graceful timeout (1s) expired" in proc.stderr.read().decode()


@pytest.mark.parametrize("how", ["second SIGINT", "SIGQUIT"])
def test_prefork_escalation_exits_at_once_and_takes_the_workers(how):
    port = free_port()
    with lab_server("prefork", port, "-w", "2", stderr=subprocess.DEVNULL) as proc:
        workers = psutil.Process(proc.pid).children()
        try:
            results: list = []
            threading.Thread(target=sleep_request, args=(port, 20, results), daemon=True).start()
            time.sleep(0.5)
            if how == "SIGQUIT":
                proc.send_signal(signal.SIGQUIT)
                expected = 128 + signal.SIGQUIT
            else:
                proc.send_signal(signal.SIGINT)
                time.sleep(0.3)
                assert proc.poll() is None  # still finishing the request
                proc.send_signal(signal.SIGINT)
                expected = 128 + signal.SIGINT
            assert proc.wait(3) == expected
            _, alive = psutil.wait_procs(workers, timeout=3)
            assert alive == []
        finally:  # the workers are not the server's session: a failed test must not leave them running
            with contextlib.suppress(psutil.Error):
                for worker in workers:
                    worker.kill()
