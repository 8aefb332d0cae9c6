"""The target runner's local backend on real servers: start, ready, process tree, usage, stop, logs."""

from __future__ import annotations

import http.client
import os
import threading
from pathlib import Path

import psutil
import pytest

from loadtest.inserver.headers import HEADER_MODEL, HEADER_PID
from loadtest.measure.cpuwatch import Watch
from loadtest.registry import targets
from loadtest.run import processes
from loadtest.run.local import LocalRunner
from loadtest.run.runner import Launch
from tests.support import ROOT, get

PREFORK_2 = targets.TARGETS["lab-prefork"].with_args("-w 2")


def launch(tmp_path: Path, **kw) -> Launch:
    return Launch(**{"name": "lab-prefork", "target": PREFORK_2, "log_dir": tmp_path, "cwd": ROOT, **kw})


def test_a_started_target_answers_as_its_name_from_its_forked_workers(tmp_path):
    """LAB_SERVER_MODEL reaches the server: a name the server could not derive itself comes back."""
    with LocalRunner(launch(tmp_path, name="prefork-under-test")) as server:
        assert server.start() and server.wait_ready(30), server.problem
        status, headers, _ = get(server.port, "/whoami")
        tree = {p.pid for p in server.processes()}
        assert status == 200 and headers[HEADER_MODEL.lower()] == "prefork-under-test"
        assert server.pid in tree and len(tree) >= 3  # the master and its 2 forked workers
        assert int(headers[HEADER_PID.lower()]) in tree - {server.pid}  # a worker answered
        reading = server.usage(memory=True)
        assert reading is not None and reading.memory_kind in ("pss", "rss")
        assert reading.memory_bytes > 5 * 2**20 and set(reading.per_process) == tree
        assert server.notes == []  # /health said 200
    assert server.stdout_log.exists() and server.stderr_log.exists()


def test_usage_counts_the_cpu_a_worker_spends(tmp_path):
    with LocalRunner(launch(tmp_path)) as server:
        assert server.start() and server.wait_ready(30), server.problem
        watch = Watch(server.usage, interval=0.1).start()
        try:
            before = server.usage()
            assert get(server.port, "/cpu?ms=300")[0] == 200
            after = server.usage()
        finally:
            watch.stop()
    assert before is not None and after is not None
    assert after.cpu_s - before.cpu_s >= 0.2  # 300 ms of /cpu in a worker, counted in the tree
    assert len(watch.samples) >= 2 and watch.samples[-1][1] >= before.cpu_s


def accepted(server: LocalRunner) -> int:
    """Connections a process of the server has accepted (a request in a worker's hands)."""
    return sum(
        1
        for p in server.processes()
        for c in p.net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == server.port
    )


def test_stop_is_graceful_and_leaves_nothing_behind(tmp_path):
    """SIGTERM first: a request in flight completes, the server exits 0, no process of its session remains."""
    server = LocalRunner(launch(tmp_path))
    assert server.start() and server.wait_ready(30), server.problem
    session = server.pid
    result: list[int] = []
    request = threading.Thread(target=lambda: result.append(get(server.port, "/sleep?s=1")[0]))
    request.start()
    for _ in range(200):  # until a worker holds the request (10 s at most)
        if accepted(server):
            break
        threading.Event().wait(0.05)
    assert accepted(server) == 1
    assert server.stop(grace=20) == 0
    request.join(10)
    assert result == [200]
    assert not server.alive() and server.usage() is None and server.processes() == []
    assert processes.session_members(session) == []


def test_a_target_that_fails_reports_its_stderr_tail(tmp_path):
    server = LocalRunner(launch(tmp_path, app="no_such_module:app", wrap_byo=False))
    assert server.start()
    assert not server.wait_ready(30)
    assert server.problem.startswith("failed to start: exited with status"), server.problem
    assert "No module named 'no_such_module'" in server.stderr_tail()
    assert not server.alive() and server.stop() is not None  # stopped already; stop again is harmless


def test_a_target_that_cannot_be_launched_says_why(tmp_path):
    server = LocalRunner(launch(tmp_path, python=tmp_path / "no-python"))
    assert not server.start()
    assert server.problem.startswith("failed to start: ") and "no-python" in server.problem
    assert not server.wait_ready(1) and server.stop() is None


def test_cores_pin_every_process_of_the_tree(tmp_path):
    core = min(os.sched_getaffinity(0))
    with LocalRunner(launch(tmp_path, cores=(core,))) as server:
        assert server.start() and server.wait_ready(30), server.problem
        procs = server.processes()
        assert len(procs) >= 3 and {tuple(p.cpu_affinity()) for p in procs} == {(core,)}


def test_another_app_goes_through_the_identity_wrapper_unless_told_not_to(tmp_path):
    wrapped = Launch(
        name="byo-test", target=targets.TARGETS["lab-threaded"], log_dir=tmp_path, app="tests.apps:app"
    )
    assert wrapped.served_app == targets.BYO_WRAPPER
    assert wrapped.environment()["LAB_BYO_APP"] == "tests.apps:app"
    with LocalRunner(wrapped) as server:
        assert server.start() and server.wait_ready(30), server.problem
        assert get(server.port, "/env")[1].get(HEADER_MODEL.lower()) == "byo-test"
    bare = Launch(
        name="bare",
        target=wrapped.target,
        log_dir=tmp_path,
        app="tests.apps:app",
        wrap_byo=False,
        stem="bare",
    )
    assert bare.served_app == "tests.apps:app" and "LAB_BYO_APP" not in bare.environment()
    with LocalRunner(bare) as server:
        assert server.start() and server.wait_ready(30), server.problem
        assert HEADER_MODEL.lower() not in get(server.port, "/env")[1]


def test_a_target_serves_on_the_host_its_launch_names_and_nowhere_else(tmp_path):
    """``Launch.host`` (tune binds it for locust workers elsewhere): 127.0.0.2 answers, 127.0.0.1 does not."""
    with LocalRunner(launch(tmp_path, target=targets.TARGETS["lab-threaded"], host="127.0.0.2")) as server:
        assert server.url == f"http://127.0.0.2:{server.port}"
        assert server.start() and server.wait_ready(30), server.problem
        assert "127.0.0.2" in server.command_text()
        conn = http.client.HTTPConnection("127.0.0.2", server.port, timeout=10)
        try:
            conn.request("GET", "/health")
            assert conn.getresponse().status == 200
        finally:
            conn.close()
        with pytest.raises(ConnectionRefusedError):
            get(server.port, "/health", timeout=5)


def test_a_second_life_keeps_the_first_one_s_logs(tmp_path):
    server = LocalRunner(launch(tmp_path, target=targets.TARGETS["lab-single"], name="single"))
    for _ in range(2):
        assert server.start() and server.wait_ready(30), server.problem
        assert server.stop() == 0
    assert server.stem == "single.2"
    assert {p.name for p in tmp_path.iterdir()} >= {"single.stderr.log", "single.2.stderr.log"}


@pytest.mark.parametrize("name", ["gunicorn-sync", "uwsgi"])
def test_registry_servers_stop_gracefully_through_the_runner(tmp_path, name):
    with LocalRunner(Launch(name=name, target=targets.TARGETS[name], log_dir=tmp_path, cwd=ROOT)) as server:
        assert server.start() and server.wait_ready(60), server.problem
        assert len(server.processes()) >= 2  # a master and its workers
    assert server.wait_exit(0) == 0  # SIGTERM was enough: no SIGKILL's -9
    assert processes.session_members(server.pid) == []
