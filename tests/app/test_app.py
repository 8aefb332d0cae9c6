"""The demo app: endpoints, parameter validation, identity headers, model naming.

The in-process tests use Flask's test client; the last ones run the app under
Flask's own dev server and gunicorn for real, because "what does app.run()
actually do" is the question wsgi-lab exists to answer.
"""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from loadtest.inserver.headers import (
    HEADER_CPU,
    HEADER_LANE_ID,
    HEADER_LANE_KIND,
    IDENTITY_HEADERS,
    LANE_GREENLET,
    LANE_THREAD,
)
from loadtest.inserver.identity import server_model
from tests.support import ROOT, concurrent_sleeps, free_port, running


def test_hello(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.data == b"Hello Flask"


@pytest.mark.parametrize(
    "path", ["/", "/health", "/sleep?s=0", "/cpu?ms=1", "/whoami", "/nope", "/sleep?s=x"]
)
def test_identity_headers_on_every_response(client, path):
    r = client.get(path)
    for name in IDENTITY_HEADERS:
        assert name in r.headers, name
    start = float(r.headers["X-Request-Start"])
    end = float(r.headers["X-Request-End"])
    assert 0 <= end - start < 5
    assert abs(start - time.time()) < 60
    assert r.headers["X-Worker-Pid"].isdigit()


def test_sleep_takes_the_time_asked(client):
    r = client.get("/sleep?s=0.2")
    spent = float(r.headers["X-Request-End"]) - float(r.headers["X-Request-Start"])
    assert r.status_code == 200
    assert spent >= 0.19


@pytest.mark.parametrize(
    "path,param",
    [
        ("/sleep?s=-1", "s"),
        ("/sleep?s=31", "s"),
        ("/sleep?s=abc", "s"),
        ("/sleep?s=nan", "s"),
        ("/cpu?ms=-5", "ms"),
        ("/cpu?ms=1e9", "ms"),
        ("/stream?chunks=0", "chunks"),
        ("/stream?delay=99", "delay"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(client, path, param):
    r = client.get(path)
    assert r.status_code == 400
    body = r.get_json()
    assert body["parameter"] == param
    assert param in body["error"]


def test_cpu_burns_roughly_the_cpu_asked(client):
    before = time.process_time()
    r = client.get("/cpu?ms=50")
    used = time.process_time() - before
    assert r.status_code == 200
    assert used >= 0.045


def test_echo_hashes_the_body(client):
    body = b"x" * 200_000
    r = client.post("/echo", data=body)
    assert r.get_json() == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_stream_yields_chunks(client):
    r = client.get("/stream?chunks=3&delay=0")
    assert r.data == b"chunk 0\nchunk 1\nchunk 2\n"


def test_whoami_reports_the_worker(client):
    info = client.get("/whoami").get_json()
    for key in ("model", "pid", "ppid", "thread_name", "thread_id", "requests_served", "process_start_time"):
        assert key in info
    assert info["requests_served"] >= 1
    assert info["multithread"] is False
    assert info["lane_kind"] == LANE_THREAD


def test_whoami_and_usage_name_the_interpreter(client):
    for path in ("/whoami", "/_lab/usage"):
        found = client.get(path).get_json()
        python = found.get("interpreter")
        assert python is not None, path
        assert python["implementation"] == sys.implementation.name
        assert python["version"] == ".".join(map(str, sys.version_info[:3]))
        expected = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
        assert python["gil_enabled"] is expected


def test_cpu_header_is_the_requests_own_cpu_time(client):
    busy = client.get("/cpu?ms=30")
    idle = client.get("/sleep?s=0.1")
    assert 29.0 <= float(busy.headers[HEADER_CPU]) < 300.0
    assert float(idle.headers[HEADER_CPU]) < 50.0
    assert busy.headers[HEADER_LANE_KIND] == LANE_THREAD
    assert busy.headers[HEADER_LANE_ID] == str(threading.get_native_id())


@pytest.mark.parametrize(
    "software,multithread,expected",
    [
        ("wsgi-lab/0.1.0 threaded", True, "lab-threaded"),
        ("wsgi-lab/0.1.0 single", False, "lab-single"),
        ("gunicorn", False, "gunicorn-sync"),
        ("gunicorn/27.0.1", True, "gunicorn-gthread"),
        ("Werkzeug/3.1.9", True, "flask-dev"),
        ("Werkzeug/3.1.9", False, "flask-dev-nothreads"),
        ("Waitress", True, "waitress"),
    ],
)
def test_model_derived_from_server_software(monkeypatch, software, multithread, expected):
    monkeypatch.delenv("LAB_SERVER_MODEL", raising=False)
    assert server_model({"SERVER_SOFTWARE": software, "wsgi.multithread": multithread}) == expected


def test_werkzeug_multiprocess_is_flask_dev_processes(monkeypatch):
    monkeypatch.delenv("LAB_SERVER_MODEL", raising=False)
    environ = {"SERVER_SOFTWARE": "Werkzeug/3.1.9", "wsgi.multithread": False, "wsgi.multiprocess": True}
    assert server_model(environ) == "flask-dev-processes"


def test_uwsgi_and_granian_are_named_without_the_env(monkeypatch):
    monkeypatch.delenv("LAB_SERVER_MODEL", raising=False)
    assert server_model({"uwsgi.version": b"2.0.30", "wsgi.multithread": False}) == "uwsgi"
    assert server_model({"SERVER_SOFTWARE": "Granian", "wsgi.multithread": True}) == "granian"


def test_model_from_env_wins(monkeypatch):
    monkeypatch.setenv("LAB_SERVER_MODEL", "my-model")
    assert server_model({"SERVER_SOFTWARE": "gunicorn"}) == "my-model"


def test_flask_dev_server_is_threaded_by_default():
    """`app.run()` since Flask 1.0: threaded=True, so sleeps overlap in one process."""
    port = free_port()
    with running(["-m", "app", "--port", str(port)], port, env={"LAB_SERVER_MODEL": ""}):
        elapsed, results = concurrent_sleeps(port)
    assert elapsed <= 1.2
    assert len({r["x-worker-pid"] for r in results}) == 1
    assert len({r["x-worker-thread"] for r in results}) >= 2
    assert {r["x-server-model"] for r in results} == {"flask-dev"}


def test_flask_dev_server_without_threads_serialises():
    """`--no-threads`: the Flask 0.12 default, one request at a time."""
    port = free_port()
    with running(["-m", "app", "--port", str(port), "--no-threads"], port, env={"LAB_SERVER_MODEL": ""}):
        elapsed, results = concurrent_sleeps(port)
    assert elapsed >= 1.8
    assert {r["x-server-model"] for r in results} == {"flask-dev-nothreads"}


def test_flask_dev_server_with_processes_forks_per_request():
    """`--processes 4`: werkzeug's ForkingWSGIServer, a child process per request."""
    port = free_port()
    args = ["-m", "app", "--port", str(port), "--processes", "4"]
    with running(args, port, env={"LAB_SERVER_MODEL": ""}) as p:
        elapsed, results = concurrent_sleeps(port)
    assert elapsed <= 1.2
    pids = {r["x-worker-pid"] for r in results}
    assert len(pids) == 4 and str(p.pid) not in pids
    assert {r["x-server-model"] for r in results} == {"flask-dev-processes"}


def test_threads_with_processes_is_werkzeugs_one_line_error():
    p = subprocess.run(
        [sys.executable, "-m", "app", "--port", "0", "--threads", "--processes", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 2
    assert p.stderr == "python -m app: error: Cannot have a multi-thread and multi-process server.\n"


def test_gunicorn_gevent_names_itself():
    port = free_port()
    args = ["-m", "gunicorn", "-w", "1", "-k", "gevent", "-b", f"127.0.0.1:{port}", "app:app"]
    with running(args, port, env={"LAB_SERVER_MODEL": ""}):
        elapsed, results = concurrent_sleeps(port)
    assert elapsed <= 1.2
    assert {r["x-server-model"] for r in results} == {"gunicorn-gevent"}


def test_gevent_greenlets_get_their_own_cpu_time():
    """A /sleep greenlet waiting while another burns CPU on the same OS thread is not charged for it."""
    port = free_port()
    args = ["-m", "gunicorn", "-w", "1", "-k", "gevent", "-b", f"127.0.0.1:{port}", "app:app"]
    with running(args, port), ThreadPoolExecutor(2) as pool:
        sleeping = pool.submit(get_headers, port, "/sleep?s=0.6")
        time.sleep(0.15)
        burning = pool.submit(get_headers, port, "/cpu?ms=200")
        slept, burnt = sleeping.result(), burning.result()
    for h in (slept, burnt):
        assert h[HEADER_LANE_KIND.lower()] == LANE_GREENLET
    assert slept[HEADER_LANE_ID.lower()] != burnt[HEADER_LANE_ID.lower()]
    assert float(burnt[HEADER_CPU.lower()]) >= 190.0
    assert float(slept[HEADER_CPU.lower()]) < 60.0


def get_headers(port: int, path: str) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_gunicorn_gthread_names_itself():
    port = free_port()
    args = ["-m", "gunicorn", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{port}", "app:app"]
    with running(args, port, env={"LAB_SERVER_MODEL": ""}):
        elapsed, results = concurrent_sleeps(port)
    assert elapsed <= 1.2
    assert {r["x-server-model"] for r in results} == {"gunicorn-gthread"}


def test_bad_port_is_a_one_line_error():
    p = subprocess.run(
        [sys.executable, "-m", "app", "--port", "99999"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert p.returncode == 2
    assert "--port" in p.stderr
