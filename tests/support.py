"""Helpers shared by the tests: free ports, starting a server process, waiting for it, stopping it.

The port, HTTP-wait and session helpers are ``loadtest/run/processes.py``'s, the ones
the target runner (``loadtest/run/local.py``) uses; ``stop`` here stops what a test started itself.

Every process a test starts is stopped by pid in a ``finally``; nothing is
left running when a test fails.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadtest.run import processes
from loadtest.run.processes import free_port
from tests.apps import CLOSE_LOG_ENV

__all__ = [
    "BODY_LIMIT",
    "KEEP_ALIVE_S",
    "RECOMMENDATION_KEYS",
    "ROOT",
    "TIMEOUT_S",
    "ModeServer",
    "assert_one_line_error",
    "concurrent_sleeps",
    "engine_answers",
    "free_port",
    "lab_server",
    "run_compare",
    "run_module",
    "running",
    "serve_test_apps",
    "stop",
    "wait_for_health",
]

ROOT = Path(__file__).resolve().parent.parent
# What recommendation.json promises for `recommended` and `baseline` (make tune's contract).
RECOMMENDATION_KEYS = (
    "server",
    "worker_class",
    "workers",
    "threads",
    "command",
    "rate_at_slo",
    "p95_ms",
    "memory_mb",
    "cpus",
)


def wait_for_health(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Until /health on 127.0.0.1:port says 200; raises RuntimeError/TimeoutError otherwise."""
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + timeout

    def gone() -> str | None:
        if proc is None or proc.poll() is None:
            return None
        return f"exited with status {proc.returncode} before answering HTTP"

    while time.monotonic() < deadline:
        status, problem = processes.wait_http(url, gone, max(deadline - time.monotonic(), 0.1))
        if status == 200:
            return
        if status is None and gone() is not None:
            raise RuntimeError(f"server {problem} ({url})")
        time.sleep(processes.POLL_S)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:g} s")


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM (graceful), SIGKILL after ``timeout``; then any leftover process of its session.

    The session sweep only finds processes started in their own session
    (``start_new_session``); for others it finds nothing, their pid being no session id.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for leftover in processes.session_members(proc.pid):
        with contextlib.suppress(psutil.Error):
            leftover.kill()
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


def lab_server(mode: str, port: int, *extra: str, app: str = "app:app", module: str = "server", **kw):
    """Our server in ``mode`` on 127.0.0.1:port: ``python -m server`` or a ``module`` that wraps its main().

    The one way the tests start it: ``env`` and Popen keywords (``stderr``, ``preexec_fn``)
    pass through to :func:`running`; after the ``with`` block ``proc.returncode`` is its exit status.
    """
    args = ["-m", module, "--mode", mode, "--bind", f"127.0.0.1:{port}", *extra, app]
    return running(args, port, **kw)


# The shared per-mode servers (the ``mode_server`` fixture in conftest.py) run with these limits;
# the tests that probe a limit import them.
BODY_LIMIT = 1_000_000
TIMEOUT_S = 2  # --timeout: a head or a body that stalls this long gets 408
KEEP_ALIVE_S = 1  # --keep-alive: an idle persistent connection is closed after this long
# Flags per mode on top of those: prefork with two workers, so that a second process is in play.
MODE_FLAGS = {"prefork": ("-w", "2")}


@dataclass(frozen=True)
class ModeServer:
    """A running server: its mode, port, process and the file its stderr goes to."""

    mode: str
    port: int
    proc: subprocess.Popen
    log: Path


@contextlib.contextmanager
def serve_test_apps(mode: str, folder: Path, *extra: str) -> Iterator[ModeServer]:
    """``tests.apps:validated`` in ``mode`` with ``extra`` flags; stderr and close() count in ``folder``."""
    port = free_port()
    log = folder / "server-errors.log"
    flags = [
        *extra,
        *MODE_FLAGS.get(mode, ()),
        *("--timeout", str(TIMEOUT_S), "--keep-alive", str(KEEP_ALIVE_S)),
        *("--limit-request-body", str(BODY_LIMIT)),
    ]
    env = {CLOSE_LOG_ENV: str(folder / "closed.log")}
    with (
        log.open("wb") as err,
        lab_server(mode, port, *flags, app="tests.apps:validated", env=env, stderr=err) as proc,
    ):
        yield ModeServer(mode, port, proc, log)


def run_module(
    module: str, *args: str, cwd: Path = ROOT, timeout: float = 150
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` as a user runs it, output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_compare(*args: str, cwd: Path = ROOT, timeout: float = 150) -> subprocess.CompletedProcess:
    """``python -m loadtest.compare ARGS`` as a user runs it, output captured."""
    return run_module("loadtest.compare", *args, cwd=cwd, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str, quiet: bool = True) -> None:
    """Exit status 2 and one line of stderr naming each of ``words``; nothing on stdout when ``quiet``."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    if quiet:
        assert result.stdout == ""


def get(port: int, target: str, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """``GET target`` on a fresh connection to 127.0.0.1:port: (status, lower-case headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", target)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


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


def engine_answers() -> bool:
    """A Docker engine answers ``docker info`` (the docker tests skip without one unless REQUIRE_DOCKER)."""
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0
