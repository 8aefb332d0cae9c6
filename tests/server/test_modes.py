"""The models with the real Flask app: concurrency evidence, zombies, shutdown, logs.

Timing assertions have generous margins (the machine has two
shared cores); each server is started and stopped by pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support import concurrent_sleeps, free_port, get, lab_server

# Extra flags per model: prefork with 4 workers, so that 4 sleeps can run at once.
MODEL_FLAGS = {"single": (), "threaded": (), "forking": (), "prefork": ("-w", "4")}


@pytest.fixture(scope="module", params=list(MODEL_FLAGS))
def flask_server(request):
    port = free_port()
    with lab_server(request.param, port, *MODEL_FLAGS[request.param], stderr=subprocess.DEVNULL) as proc:
        yield request.param, port, proc


def test_concurrency_evidence(flask_server):
    mode, port, proc = flask_server
    get(port, "/health")  # warm up (imports, first fork)
    elapsed, headers = concurrent_sleeps(port)
    pids = {h["x-worker-pid"] for h in headers}
    threads = {h["x-worker-thread"] for h in headers}
    assert {h["x-server-model"] for h in headers} == {f"lab-{mode}"}
    if mode == "single":
        assert elapsed >= 1.8, elapsed
        assert pids == {str(proc.pid)} and threads == {"MainThread"}
    elif mode == "threaded":
        assert elapsed <= 1.2, elapsed
        assert pids == {str(proc.pid)} and len(threads) >= 2
    else:
        assert elapsed <= 1.2, elapsed
        assert len(pids) >= 2 and str(proc.pid) not in pids


def test_whoami_declares_the_mode_truthfully(flask_server):
    mode, port, _ = flask_server
    status, _, body = get(port, "/whoami")
    who = json.loads(body)
    assert status == 200 and who["model"] == f"lab-{mode}"
    assert who["server_software"] == f"wsgi-lab/0.1.0 {mode}"
    assert who["multithread"] is (mode == "threaded")
    assert who["multiprocess"] is (mode in ("forking", "prefork"))


def test_chunked_upload_through_flask(flask_server):
    _, port, _ = flask_server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = os.urandom(100_000)
    conn.request("POST", "/echo", body=iter([body[:30_000], body[30_000:]]))  # Transfer-Encoding: chunked
    assert json.loads(conn.getresponse().read())["sha256"] == hashlib.sha256(body).hexdigest()
    conn.close()


def children_of(pid: int) -> dict[int, str]:
    """{child pid: state letter} from /proc, zombies included."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found[int(entry.name)] = fields[0]
    return found


def test_forking_leaves_no_zombies():
    port = free_port()
    with lab_server("forking", port, stderr=subprocess.DEVNULL) as proc:
        for i in range(50):
            status, _, _ = get(port, f"/health?n={i}")
            assert status == 200
        deadline = time.monotonic() + 10
        while (kids := children_of(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert kids == {}, f"children left (state Z = zombie): {kids}"


def test_forking_max_children_is_back_pressure():
    port = free_port()
    with lab_server("forking", port, "--max-children", "2", stderr=subprocess.DEVNULL) as proc:
        elapsed, _ = concurrent_sleeps(port, n=4, seconds=0.5)
        assert elapsed >= 0.9, elapsed  # 4 requests, 2 at a time
        assert len(children_of(proc.pid)) <= 2


def test_threaded_max_threads_is_back_pressure():
    port = free_port()
    with lab_server("threaded", port, "--max-threads", "2", stderr=subprocess.DEVNULL):
        elapsed, headers = concurrent_sleeps(port, n=4, seconds=0.5)
        assert elapsed >= 0.9, elapsed
        assert len({h["x-worker-thread"] for h in headers}) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["single", "threaded", "forking"])
def test_sigterm_lets_the_request_in_flight_finish(mode):
    port = free_port()
    with lab_server(mode, port, stderr=subprocess.PIPE) as proc:
        # An idle keep-alive connection must not hold up the shutdown.
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        idle.request("GET", "/health")
        idle.getresponse().read()
        result = {}
        worker = threading.Thread(target=lambda: result.update(r=get(port, "/sleep?s=1.5")))
        worker.start()
        time.sleep(0.6)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        worker.join(15)
        assert result["r"][0] == 200
        assert proc.wait(10) == 0
        assert time.monotonic() - sent < 4.0  # not the 5 s keep-alive of the idle connection
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert "SIGTERM" in proc.stderr.read().decode()
        idle.close()


def test_second_sigint_exits_at_once():
    port = free_port()
    with lab_server("forking", port, stderr=subprocess.DEVNULL) as proc:
        threading.Thread(target=lambda: _ignore_errors(get, port, "/sleep?s=20", 30), daemon=True).start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # still finishing the request
        proc.send_signal(signal.SIGINT)
        assert proc.wait(3) == 128 + signal.SIGINT
        time.sleep(0.3)
        assert children_of(proc.pid) == {}


def _ignore_errors(fn, *args):
    with contextlib.suppress(OSError):
        fn(*args)


def test_banner_and_access_log(tmp_path):
    port = free_port()
    access = tmp_path / "access.log"
    errors = tmp_path / "errors.log"
    with (
        errors.open("wb") as err,
        lab_server("threaded", port, "--access-log", str(access), stderr=err) as proc,
    ):
        get(port, "/whoami")
        get(port, "/nope")
    assert proc.returncode == 0
    banner = errors.read_text().splitlines()[0]
    for part in ("mode=threaded", f"pid={proc.pid}", f"127.0.0.1:{port}", "app=app:app", "parser="):
        assert part in banner, banner
    lines = access.read_text().splitlines()
    whoami = next(line for line in lines if "GET /whoami" in line)
    assert f"pid={proc.pid}" in whoami and "thread=conn-" in whoami and '" 200 ' in whoami
    assert any('GET /nope HTTP/1.1" 404' in line for line in lines)


def test_access_log_to_stdout_in_forking_mode():
    port = free_port()
    with lab_server(
        "forking", port, "--access-log", "-", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as proc:
        _, headers, _ = get(port, "/health")
    out = proc.stdout.read().decode()
    assert f"pid={headers['x-worker-pid']} thread=MainThread" in out


def test_single_mode_drops_an_idle_keep_alive_connection_for_a_waiting_client():
    port = free_port()
    with lab_server("single", port, "--keep-alive", "10", stderr=subprocess.DEVNULL):
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        idle.request("GET", "/health")
        response = idle.getresponse()
        response.read()
        assert response.getheader("Connection") is None  # kept alive: nobody else was waiting
        started = time.monotonic()
        status, _, _ = get(port, "/health", timeout=5)
        assert status == 200
        assert time.monotonic() - started < 2.0  # not the 10 s the idle client could have held us
        idle.close()


def test_keep_alive_zero_closes_after_every_response():
    port = free_port()
    with lab_server("threaded", port, "--keep-alive", "0", stderr=subprocess.DEVNULL):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        assert response.getheader("Connection") == "close"
        conn.close()


@pytest.mark.parametrize("mode", ["threaded", "forking"])
def test_cpu_affinity_pins_the_server_its_threads_and_its_children(tmp_path, mode):
    cpu = max(os.sched_getaffinity(0))  # the last usable CPU: a pin that differs from "all" if there are 2+
    port = free_port()
    errors = tmp_path / "errors.log"
    with errors.open("wb") as err, lab_server(mode, port, "--cpu-affinity", str(cpu), stderr=err) as proc:
        done = threading.Event()

        def hold_a_connection():  # a connection thread (threaded) or child (forking) while we look
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET /sleep?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                conn.recv(65536)
            done.set()

        client = threading.Thread(target=hold_a_connection)
        client.start()
        time.sleep(0.5)
        tasks = {int(t) for t in os.listdir(f"/proc/{proc.pid}/task")}
        pids = {proc.pid, *children_of(proc.pid)}
        if mode == "forking":
            assert len(pids) == 2, f"expected a child serving the connection, found {pids}"
        else:
            assert len(tasks) >= 2, f"expected a connection thread, found {tasks}"
        for pid in pids:
            for task in os.listdir(f"/proc/{pid}/task"):
                assert os.sched_getaffinity(int(task)) == {cpu}, f"pid {pid} thread {task}"
        client.join(15)
        assert done.is_set()
    assert f"cpu-affinity={cpu}" in errors.read_text().splitlines()[0]
