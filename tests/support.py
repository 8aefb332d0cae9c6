"""Helpers shared by the tests: free ports, starting a server process, waiting for it.

Every process a test starts is stopped by pid in a ``finally``; nothing is
left running when a test fails.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/health"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM by pid, then SIGKILL if it does not go."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def running(args: list[str], port: int, env: dict | None = None, **popen) -> Iterator[subprocess.Popen]:
    """Start ``python <args>`` from the project root, wait for /health, stop it afterwards."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=full_env, **popen)
    try:
        wait_for_health(port, proc=proc)
        yield proc
    finally:
        stop(proc)


def lab_server(mode: str, port: int, *extra: str, app: str = "app:app", **kw):
    """Our server in ``mode`` on 127.0.0.1:port."""
    return running(["-m", "server", "--mode", mode, "--bind", f"127.0.0.1:{port}", *extra, app], port, **kw)


def run_compare(*args: str, cwd: Path = ROOT, timeout: float = 150) -> subprocess.CompletedProcess:
    """``python -m loadtest.compare ARGS`` as a user runs it, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "loadtest.compare", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def concurrent_sleeps(port: int, n: int = 4, seconds: float = 0.5) -> tuple[float, list[dict[str, str]]]:
    """``n`` simultaneous ``/sleep`` requests on 127.0.0.1:port, each on its own connection.

    Returns (elapsed seconds, each response's headers with lower-case names); every
    response must be a 200. A barrier releases all requests at once, so what the
    timing shows is the server's concurrency, not the client's start-up.
    """
    barrier = threading.Barrier(n)

    def one(_) -> dict[str, str]:
        barrier.wait()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", f"/sleep?s={seconds}")
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
            return {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    started = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    return time.monotonic() - started, results
