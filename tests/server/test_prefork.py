"""Prefork over real sockets and processes: workers, keep-alive, the arbiter, recycling, the heartbeat.

Every server is started and stopped by pid; margins are generous (two shared cores).
"""

from __future__ import annotations

import csv
import http.client
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.support import ROOT, concurrent_sleeps, free_port, get, lab_server

LOCUSTFILE = str(ROOT / "loadtest" / "generator" / "locustfile.py")


def workers_of(pid: int) -> set[int]:
    """Live (non-zombie) child processes of ``pid``."""
    found = set()
    for child in psutil.Process(pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_for_workers(pid: int, count: int, timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (found := workers_of(pid)) and len(found) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return workers_of(pid) if len(found) != count else found


def test_four_workers_serve_eight_sleeps_in_two_rounds():
    port = free_port()
    with lab_server("prefork", port, "-w", "4", stderr=subprocess.DEVNULL) as proc:
        workers = wait_for_workers(proc.pid, 4, 5)
        assert len(workers) == 4
        elapsed, headers = concurrent_sleeps(port, n=8, seconds=0.5)
        pids = {int(h["x-worker-pid"]) for h in headers}
        assert 0.9 <= elapsed <= 1.8, elapsed  # 8 sleeps, 4 at a time: about 1 s
        assert pids == workers and proc.pid not in pids
        assert {h["x-server-model"] for h in headers} == {"lab-prefork"}


def test_two_requests_share_one_keep_alive_connection():
    port = free_port()
    with lab_server("prefork", port, "-w", "2", stderr=subprocess.DEVNULL):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        seen = []
        for _ in range(2):
            conn.request("GET", "/whoami")
            r = conn.getresponse()
            r.read()
            assert r.status == 200 and r.getheader("Connection") is None
            seen.append((r.getheader("X-Worker-Pid"), conn.sock.getsockname()))
        assert seen[0] == seen[1]  # same worker, same client port: one TCP connection
        conn.close()


def test_a_killed_worker_is_replaced_within_a_second():
    port = free_port()
    with lab_server("prefork", port, "-w", "4", stderr=subprocess.DEVNULL) as proc:
        before = wait_for_workers(proc.pid, 4, 5)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < 1.0:
            after = workers_of(proc.pid)
            if len(after) == 4 and victim not in after:
                break
            time.sleep(0.02)
        assert len(after) == 4 and victim not in after, after
        assert get(port, "/health")[0] == 200
        zombies = [c.pid for c in psutil.Process(proc.pid).children() if c.status() == psutil.STATUS_ZOMBIE]
        assert zombies == []  # the arbiter reaped the dead worker


def test_sighup_replaces_every_worker():
    port = free_port()
    with lab_server("prefork", port, "-w", "2", stderr=subprocess.DEVNULL) as proc:
        before = wait_for_workers(proc.pid, 2, 5)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while ((after := workers_of(proc.pid)) & before or len(after) != 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(after) == 2 and not after & before, (before, after)
        assert get(port, "/health")[0] == 200


def test_ttin_adds_and_ttou_removes_a_worker():
    port = free_port()
    with lab_server("prefork", port, "-w", "2", stderr=subprocess.DEVNULL) as proc:
        assert len(wait_for_workers(proc.pid, 2, 5)) == 2
        proc.send_signal(signal.SIGTTIN)
        assert len(wait_for_workers(proc.pid, 3, 5)) == 3
        proc.send_signal(signal.SIGTTOU)
        assert len(wait_for_workers(proc.pid, 2, 5)) == 2
        proc.send_signal(signal.SIGTTOU)  # not at once: the kernel merges a signal sent while one is pending
        assert len(wait_for_workers(proc.pid, 1, 5)) == 1
        assert get(port, "/health")[0] == 200


def test_threads_give_each_worker_a_pool():
    port = free_port()
    with lab_server("prefork", port, "-w", "1", "--threads", "4", stderr=subprocess.DEVNULL) as proc:
        elapsed, headers = concurrent_sleeps(port, n=4, seconds=0.5)
        assert elapsed <= 1.2, elapsed  # 4 at once in one worker
        assert len({h["x-worker-pid"] for h in headers}) == 1
        assert len({h["x-worker-thread"] for h in headers}) >= 2
        assert str(proc.pid) not in {h["x-worker-pid"] for h in headers}


@pytest.mark.slow
def test_timeout_is_the_heartbeat_a_stuck_worker_is_killed(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as err, lab_server("prefork", port, "-w", "1", "--timeout", "2", stderr=err) as proc:
        (stuck,) = wait_for_workers(proc.pid, 1, 5)
        started = time.monotonic()
        with pytest.raises((http.client.HTTPException, OSError)):
            get(port, "/sleep?s=10", timeout=15)  # the worker dies mid-request: no response
        assert time.monotonic() - started < 6, "killed after about --timeout, not after the 10 s sleep"
        status, headers, _ = get(port, "/health")
        assert status == 200 and int(headers["x-worker-pid"]) != stuck
    assert "longer than --timeout 2s" in log.read_text()


@pytest.mark.slow
def test_max_requests_recycles_workers_under_locust_without_a_failure(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LAB_HOSTS"))}
    with (
        log.open("wb") as err,
        lab_server(
            "prefork", port, "-w", "2", "--max-requests", "10", "--max-requests-jitter", "5", stderr=err
        ),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--users", "4",
             "--spawn-rate", "4", "--run-time", "4s", "--host", f"http://127.0.0.1:{port}",
             "--csv", str(tmp_path / "run"), "--only-summary", "HelloUser"],
            cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    with (tmp_path / "run_stats.csv").open() as f:
        total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    # Each worker serves at most 15 requests: with one recycle at most, two slots serve 14 + 29 = 43,
    # so 50 mean at least two recycles.  (A bound on the count, not the rate: a busy machine serves
    # fewer in the 4 s.)
    assert int(total["Request Count"]) >= 50, (total, result.stderr[-2000:])
    assert int(total["Failure Count"]) == 0, result.stderr[-2000:]
    assert log.read_text().count("reached --max-requests") >= 2
