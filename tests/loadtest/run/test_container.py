"""The container backend, for real: a lab target under a CPU quota and a memory limit on the real engine.

Skips only when no engine answers and ``REQUIRE_DOCKER`` is unset (as the compose
tests do). Every container carries this test run's labels and is removed in a
``finally``; the image is the project's, built only when its inputs changed.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.measure.cpuwatch import Reading
from loadtest.registry import targets
from loadtest.run import engine, image, shim
from loadtest.run.container import Box, ContainerRunner
from loadtest.run.runner import Launch
from tests.support import engine_answers, get

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

MiB = 1024 * 1024
READY_S = 60.0
HOG_APP = '''"""Allocates (and touches) 400 MiB when imported: more than a 300 MiB container holds."""
ballast = bytearray(400 * 1024 * 1024)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fits"]
'''


def test_usage_from_stats_reads_cgroup_v1_and_v2_documents():
    v1 = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 2_500_000_000},
            "throttling_data": {"periods": 40, "throttled_periods": 7, "throttled_time": 300_000_000},
        },
        "memory_stats": {"usage": 60 * MiB, "stats": {"cache": 10 * MiB}},
    }
    v2 = {
        "cpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}},
        "memory_stats": {"usage": 60 * MiB, "stats": {"inactive_file": 20 * MiB}},
    }
    one, two = engine.usage_from_stats(v1), engine.usage_from_stats(v2)
    assert one is not None and two is not None
    assert (one.cpu_s, one.memory_bytes) == (2.5, 50 * MiB)
    assert one.counters() == {"periods": 40, "throttled_periods": 7, "throttled_s": 0.3}
    assert (two.memory_bytes, two.periods) == (40 * MiB, 0)
    assert engine.usage_from_stats({"cpu_stats": {}, "memory_stats": {}}) is None  # a stopped container
    assert engine.read_time({"read": "2026-12-06T01:42:43.576640061Z"}) == pytest.approx(1796521363.57664)
    assert engine.read_time({"read": "0001-01-01T00:00:00Z"}) is None  # what a stopped container reports


@pytest.fixture(scope="module")
def client() -> Iterator:
    if not engine_answers():
        if os.environ.get("REQUIRE_DOCKER", "") not in ("", "0"):
            pytest.fail("REQUIRE_DOCKER is set but no Docker engine answers `docker info`")
        pytest.skip("no Docker engine (../shared/docker-sandbox/start gives one)")
    docker_client = engine.connect()
    image.project_image(docker_client, print)
    yield docker_client
    docker_client.close()


@pytest.fixture
def box_of(client, tmp_path: Path) -> Iterator:
    """``box_of(cpus, memory)``: a Box for this test; every container it labelled is removed afterwards."""
    run_id = f"test-{uuid.uuid4().hex[:8]}"

    def make(cpus: float, memory_bytes: int, app_dir: Path | None = None) -> Box:
        return Box(targets.COMPOSE_IMAGE, cpus, memory_bytes, run_id, app_dir)

    yield make
    engine.remove_labelled(client, run_id)


def reading_after(runner: ContainerRunner, moment: float, memory: bool = False) -> Reading:
    """The first reading the engine took after ``moment`` (it samples a container once a second)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reading = runner.usage(memory)
        if reading is not None and reading.at is not None and reading.at > moment:
            return reading
        time.sleep(0.1)
    raise AssertionError(f"no stats reading after {moment} within 15 s")


def runner_for(client, box: Box, tmp_path: Path, name: str, app: str = targets.OUR_APP) -> ContainerRunner:
    launch = Launch(name=name, target=targets.TARGETS[name], log_dir=tmp_path / "logs", app=app)
    return ContainerRunner(launch, box, client)


def test_a_lab_target_serves_under_its_quota_and_limit(client, box_of, tmp_path):
    runner = runner_for(client, box_of(1.5, 300 * MiB), tmp_path, "lab-threaded")
    try:
        assert runner.start(), runner.problem
        assert runner.wait_ready(READY_S), runner.problem + runner.stderr_tail()
        assert runner.limits is not None
        assert (runner.limits.cpu_quota_us, runner.limits.cpu_period_us) == (150_000, 100_000)
        assert runner.limits.memory_limit_bytes == 300 * MiB
        assert runner.limits.cpus == 1.5
        status, headers, _ = get(runner.port, "/cpu?ms=200")
        assert status == 200 and headers["x-server-model"] == "lab-threaded"
        reading = reading_after(runner, time.time(), memory=True)
        assert reading.cpu_s >= 0.2  # the request's 200 ms of CPU, and the server's start
        assert reading.memory_kind == "cgroup"
        assert 5 * MiB < (reading.memory_bytes or 0) < 300 * MiB
        assert reading.counters["periods"] > 0  # the quota's accounting periods are counted
        assert set(reading.counters) == {"periods", "throttled_periods", "throttled_s"}
    finally:
        runner.stop()
    assert runner.oom_kills == 0 and not runner.oom_killed
    assert (
        client.containers.list(all=True, filters={"label": f"{engine.RUN_LABEL}={runner.box.run_id}"}) == []
    )


def test_a_busy_target_over_its_quota_is_throttled(client, box_of, tmp_path):
    """Half a core and a request that wants a whole one for a second: the CFS throttles it, and we read so."""
    runner = runner_for(client, box_of(0.5, 300 * MiB), tmp_path, "lab-threaded")
    try:
        assert runner.start() and runner.wait_ready(READY_S), runner.problem
        before = reading_after(runner, time.time())
        status, _, _ = get(runner.port, "/cpu?ms=1000")
        after = reading_after(runner, time.time())
        assert status == 200
        assert after.cpu_s - before.cpu_s >= 0.9  # the request's second of CPU, at half a core
        assert after.counters["throttled_periods"] > before.counters["throttled_periods"]
        assert after.counters["throttled_s"] > before.counters["throttled_s"]
    finally:
        runner.stop()


def test_an_app_beyond_its_memory_limit_is_reported_oom_killed(client, box_of, tmp_path):
    app_dir = tmp_path / "hogapp"
    app_dir.mkdir()
    (app_dir / "hog.py").write_text(HOG_APP)
    app_dir.chmod(0o755)
    (app_dir / "hog.py").chmod(0o644)
    runner = runner_for(client, box_of(1.5, 300 * MiB, app_dir), tmp_path, "lab-threaded", app="hog:app")
    try:
        assert runner.start(), runner.problem
        assert not runner.wait_ready(READY_S)
    finally:
        runner.stop()
    assert runner.oom_killed
    assert runner.oom_kills >= 1
    assert runner.wait_exit(0) == 137
    assert "killed by the OOM killer" in runner.problem and "300 MiB" in runner.problem


def test_the_app_directory_is_mounted_for_a_byo_app(client, box_of, tmp_path):
    app_dir = tmp_path / "myapp"
    app_dir.mkdir()
    (app_dir / "small.py").write_text(HOG_APP.replace("400 * 1024 * 1024", "1024"))
    app_dir.chmod(0o755)
    (app_dir / "small.py").chmod(0o644)
    runner = runner_for(client, box_of(1, 300 * MiB, app_dir), tmp_path, "gunicorn-sync", app="small:app")
    try:
        assert runner.start() and runner.wait_ready(READY_S), runner.problem + runner.stderr_tail()
        status, headers, body = get(runner.port, "/anything")
        assert (status, body) == (200, b"fits")
        assert headers["x-server-model"] == "gunicorn-sync"  # served through the identity wrapper
    finally:
        runner.stop()


def test_app_app_in_a_private_team_directory_is_the_teams(client, box_of, tmp_path):
    """A team's app.py as app:app, in a 0700 directory: served by the invoking uid, theirs, not the demo."""
    team = tmp_path / "team"
    team.mkdir(mode=0o700)
    (team / "app.py").write_text(HOG_APP.replace("400 * 1024 * 1024", "1024").replace("fits", "team"))
    box = dataclasses.replace(box_of(1, 300 * MiB, team), shim=shim.staged())
    launch = Launch(
        name="gunicorn-sync", target=targets.TARGETS["gunicorn-sync"], log_dir=tmp_path / "logs",
        app="app:app", shim=box.shim,
    )  # fmt: skip
    runner = ContainerRunner(launch, box, client)
    try:
        assert runner.start() and runner.wait_ready(READY_S), runner.problem + runner.stderr_tail()
        status, headers, body = get(runner.port, "/")
        assert (status, body) == (200, b"team") and headers["x-server-model"] == "gunicorn-sync"
        assert runner.container.attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    finally:
        runner.stop()


def test_stop_is_graceful_a_request_in_flight_finishes(client, box_of, tmp_path):
    runner = runner_for(client, box_of(1, 300 * MiB), tmp_path, "gunicorn-sync")
    answers: list[int] = []
    sent = threading.Event()

    def slow_request() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", runner.port, timeout=30)
        conn.request("GET", "/sleep?s=2")
        sent.set()
        answers.append(conn.getresponse().status)
        conn.close()

    try:
        assert runner.start() and runner.wait_ready(READY_S), runner.problem
        slow = threading.Thread(target=slow_request)
        slow.start()
        assert sent.wait(10)
        time.sleep(0.5)  # docker-proxy hands the request to the worker; the stop must find it in flight
        status = runner.stop(grace=15)
        slow.join(30)
    finally:
        runner.kill()
    assert answers == [200]
    assert status == 0  # gunicorn's own graceful exit, not the engine's SIGKILL (137)
    assert "Handling signal: term" in runner.stderr_log.read_text()


def test_a_users_image_built_on_ours_serves_its_own_app(client, box_of, tmp_path):
    """``--image``: the user's image (FROM the project's, their app added) runs with no mount."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "small.py").write_text(HOG_APP.replace("400 * 1024 * 1024", "1024"))
    (context / "Dockerfile").write_text(
        f"FROM {targets.COMPOSE_IMAGE}\nCOPY small.py /srv/wsgi-lab/small.py\n"
    )
    tag = f"wsgi-lab-test-user:{uuid.uuid4().hex[:8]}"
    client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    try:
        assert image.user_image(client, tag) == tag
        box = Box(tag, 1, 300 * MiB, box_of(1, MiB).run_id)
        runner = runner_for(client, box, tmp_path, "waitress", app="small:app")
        try:
            assert runner.start() and runner.wait_ready(READY_S), runner.problem + runner.stderr_tail()
            assert get(runner.port, "/")[2] == b"fits"
        finally:
            runner.stop()
    finally:
        client.images.remove(tag, force=True)
    with pytest.raises(engine.EngineError, match="nothing is pulled"):
        image.user_image(client, tag)
