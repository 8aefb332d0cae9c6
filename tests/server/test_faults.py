"""Faults in a real server process: fork fails, file descriptors run out.  It logs and keeps serving."""

from __future__ import annotations

import http.client
import resource
import time

import psutil
import pytest

from tests.support import free_port, lab_server

FD_LIMIT = 48  # the server starts with about 12 descriptors open
LAUNCHER = "tests.fault_launcher"  # the server with os.fork failing on the calls FAULT_FAIL_FORKS names


def fetch(port: int, target: str = "/health") -> int | str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        r = conn.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def test_forking_survives_a_failed_fork(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    with (
        log.open("wb") as err,
        lab_server(  # fork 1 serves the health check
            "forking", port, module=LAUNCHER, env={"FAULT_FAIL_FORKS": "2,3"}, stderr=err
        ) as proc,
    ):
        results = [fetch(port) for _ in range(4)]
        assert results[2:] == [200, 200], results
        assert all(r != 200 for r in results[:2]), results  # those clients were closed, not hung
        assert proc.poll() is None
    assert proc.returncode == 0
    assert log.read_text().count("cannot fork for") == 2


def test_prefork_retries_a_failed_worker_fork(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    with (
        log.open("wb") as err,
        lab_server(
            "prefork", port, "-w", "2", module=LAUNCHER, env={"FAULT_FAIL_FORKS": "2"}, stderr=err
        ) as proc,
    ):  # one worker served the health check while the second fork was retried
        deadline = time.monotonic() + 5
        while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(psutil.Process(proc.pid).children()) == 2
        assert fetch(port) == 200
    assert proc.returncode == 0
    assert "cannot fork a worker" in log.read_text()


def low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "extra"), [("threaded", ()), ("prefork", ("-w", "1", "--threads", "200"))])
def test_out_of_descriptors_sheds_clients_without_spinning_then_recovers(tmp_path, mode, extra):
    port = free_port()
    log = tmp_path / "server.log"
    held: list[http.client.HTTPConnection] = []
    with (
        log.open("wb") as err,
        lab_server(mode, port, *extra, "--keep-alive", "60", stderr=err, preexec_fn=low_fd_limit) as proc,
    ):
        try:
            server = psutil.Process(proc.pid)
            accepting = (server.children() or [server])[0]
            shed = 0
            for _ in range(FD_LIMIT + 10):  # more keep-alive clients than the server has descriptors
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("GET", "/health")
                    conn.getresponse().read()
                    held.append(conn)
                except (OSError, http.client.HTTPException):
                    shed += 1
                    conn.close()
            assert shed >= 5 and len(held) >= 10, (shed, len(held))
            busy = accepting.cpu_times()
            time.sleep(1.0)
            idle = accepting.cpu_times()
            assert (idle.user + idle.system) - (busy.user + busy.system) < 0.3  # no busy loop on EMFILE
            assert proc.poll() is None
        finally:
            for conn in held:
                conn.close()
        deadline = time.monotonic() + 10
        while (status := fetch(port)) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
    assert proc.returncode == 0
    text = log.read_text()
    assert "Too many open files" in text and "shedding" in text
