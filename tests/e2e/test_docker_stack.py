"""The compose stack, for real: build, bring up, load through it, stop it, tear it down.

Everything goes through the real ``docker compose`` CLI against the real engine
(``../shared/docker-sandbox/start`` gives one on machines without). Tests skip
only when no engine answers and ``REQUIRE_DOCKER`` is unset; CI sets it, so a
missing engine there is a failure, not a silent skip.

The stack runs under its own project name, on free host ports, with its own
results directory, so it never collides with a stack a person has up; the
fixture always ends with ``down -v --remove-orphans``. Load goes only to the
127.0.0.1 ports this stack published. Tests run in file order: the stop test
and the teardown test come last because they take the stack down.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loadtest.inserver.headers import HEADER_MODEL, IDENTITY_HEADERS
from loadtest.registry import targets
from tests.support import ROOT, concurrent_sleeps, engine_answers, free_port, stop

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

PROJECT = "wsgilab-test"
IMAGE = targets.COMPOSE_IMAGE
GRACEFUL_TIMEOUT = 5  # LAB_GRACEFUL_TIMEOUT passed to the stack below

# service -> (host-port variable in docker-compose.yml, X-Server-Model it must answer with)
SERVERS = {
    "lab-single": ("LAB_PORT_SINGLE", "lab-single"),
    "lab-threaded": ("LAB_PORT_THREADED", "lab-threaded"),
    "lab-forking": ("LAB_PORT_FORKING", "lab-forking"),
    "lab-prefork": ("LAB_PORT_PREFORK", "lab-prefork"),
    "lab-event": ("LAB_PORT_EVENT", "lab-event"),
    "gunicorn": ("LAB_PORT_GUNICORN", "gunicorn-sync"),
    "gunicorn-gthread": ("LAB_PORT_GTHREAD", "gunicorn-gthread"),
    "gunicorn-gevent": ("LAB_PORT_GEVENT", "gunicorn-gevent"),
    "waitress": ("LAB_PORT_WAITRESS", "waitress"),
    "flask-dev": ("LAB_PORT_FLASK_DEV", "flask-dev"),
    "flask-dev-nothreads": ("LAB_PORT_FLASK_NOTHREADS", "flask-dev-nothreads"),
    "flask-dev-processes": ("LAB_PORT_FLASK_PROCESSES", "flask-dev-processes"),
    "granian": ("LAB_PORT_GRANIAN", "granian"),
    "uwsgi": ("LAB_PORT_UWSGI", "uwsgi"),
}
# Servers with no SIGTERM handler of their own: docker-init passes the signal on and
# they die of it (128 + 15) at once; every other server stops gracefully with exit 0.
DIE_OF_SIGTERM = ("waitress", "flask-dev", "flask-dev-nothreads", "flask-dev-processes")
COMPOSE = ["docker", "compose", "-p", PROJECT, "-f", str(ROOT / "docker-compose.yml")]
REPORT_FILES = ("summary.json", "summary.csv", "report.md", "report.html", "env.json")


# --- engine and compose plumbing ------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    ports: dict[str, int]
    results: Path
    timings: dict[str, float] = field(default_factory=dict)

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True, files: tuple[Path, ...] = ()
    ) -> subprocess.CompletedProcess:
        cmd = [*COMPOSE, *(arg for f in files for arg in ("-f", str(f))), *args]
        proc = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
                f"\n--- stderr\n{proc.stderr[-3000:]}\n--- logs\n{self.logs()}"
            )
        return proc

    def logs(self) -> str:
        proc = subprocess.run(
            [*COMPOSE, "logs", "--tail", "15"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.stdout[-6000:]

    def containers(self, *services: str) -> list[dict]:
        """``docker compose ps -a`` as dicts (one JSON object per line in Compose v2)."""
        out = self.compose("ps", "-a", "--format", "json", *services).stdout.strip()
        if out.startswith("["):  # Compose before 2.21 printed one array
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def inspect(self, service: str) -> dict:
        (container,) = self.containers(service)
        return self.inspect_id(container["ID"])

    @staticmethod
    def inspect_id(container_id: str) -> dict:
        out = subprocess.run(
            ["docker", "inspect", container_id], capture_output=True, text=True, check=True, timeout=60
        )
        return json.loads(out.stdout)[0]

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"


def project_leftovers() -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={PROJECT}"
    found = {}
    for kind, cmd in {
        "containers": ["docker", "ps", "-a", "-q", "--filter", label],
        "networks": ["docker", "network", "ls", "-q", "--filter", label],
        "volumes": ["docker", "volume", "ls", "-q", "--filter", label],
    }.items():
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
        found[kind] = out.split()
    return found


@pytest.fixture(scope="module")
def stack():
    if not engine_answers():
        if os.environ.get("REQUIRE_DOCKER", "") not in ("", "0"):
            pytest.fail("REQUIRE_DOCKER is set but no Docker engine answers `docker info`")
        pytest.skip("no Docker engine (../shared/docker-sandbox/start gives one)")
    ports = {service: free_port() for service in SERVERS} | {"locust": free_port(), "master": free_port()}
    # The stack's own knobs only: a person's exported LAB_*/GUNICORN_* must not leak in.
    knobs = ("COMPOSE_", "GUNICORN_", "LAB_", "COMPARE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(knobs)}
    env |= {var: str(ports[service]) for service, (var, _) in SERVERS.items()}
    # Not pytest's tmp_path: other pytest sessions on the machine prune those.
    results = Path(tempfile.mkdtemp(prefix="wsgilab-results-"))
    env |= {
        "LAB_PORT_LOCUST": str(ports["locust"]),
        "LAB_PORT_LOCUST_MASTER": str(ports["master"]),
        "LAB_RESULTS_DIR": str(results),
        "LAB_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
    }
    stack = Stack(env=env, ports=ports, results=results)
    stack.compose("down", "-v", "--remove-orphans", timeout=120)  # debris of an interrupted run
    try:
        started = time.monotonic()
        stack.compose("build", timeout=900)
        stack.timings["build"] = time.monotonic() - started
        started = time.monotonic()
        stack.compose(
            "up", "-d", "--wait", "--wait-timeout", "180", "--scale", "locust-worker=2", timeout=300
        )
        stack.timings["up"] = time.monotonic() - started
        print(f"\ncompose timings: {', '.join(f'{k} {v:.1f} s' for k, v in stack.timings.items())}")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", "--timeout", "15", timeout=180, check=False)
        shutil.rmtree(results, ignore_errors=True)
        # A rebuild after a code change leaves the previous image untagged: drop this
        # project's (a rebuild without changes leaves none: see the image test).
        label = f"label=com.docker.compose.project={PROJECT}"
        subprocess.run(
            ["docker", "image", "prune", "-f", "--filter", label], capture_output=True, timeout=120
        )


# --- HTTP helpers ---------------------------------------------------------------------


def get(url: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names: granian sends them lower-case, uWSGI as the app set them)."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def post(url: str, form: dict[str, str] | None = None, timeout: float = 10) -> dict:
    data = urllib.parse.urlencode(form or {}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=timeout) as r:
        return json.loads(r.read())


def locust_stats(stack: Stack) -> dict:
    return json.loads(get(stack.url("locust", "/stats/requests"))[2])


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- the image ------------------------------------------------------------------------


RUNTIME_MODULES = ("app", "server", "loadtest", "h11", "gunicorn", "locust")


def test_image_is_lean_and_runs_as_non_root(stack: Stack) -> None:
    probe = (
        "import importlib.util as u, json, os, shutil\n"
        "print(json.dumps({'uid': os.getuid(),"
        " 'tools': [t for t in ('gcc', 'cc', 'g++', 'make', 'curl', 'wget') if shutil.which(t)],"
        " 'dev_packages': [m for m in ('playwright', 'ruff') if u.find_spec(m)],"
        f" 'runtime': [m for m in {RUNTIME_MODULES!r} if u.find_spec(m)],"
        " 'tree': sorted(os.listdir('.'))}))"
    )
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "python", IMAGE, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    facts = json.loads(out.splitlines()[-1])
    assert facts["uid"] != 0
    assert facts["tools"] == []
    assert facts["dev_packages"] == []
    assert facts["runtime"] == list(RUNTIME_MODULES)
    # .dockerignore keeps the context to what runs: no tests, .git, .venv or results.
    assert set(facts["tree"]) <= {"app", "server", "loadtest", "docker"}


def image_id(ref: str) -> str:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def untagged_images() -> set[str]:
    out = subprocess.run(
        ["docker", "images", "-q", "--no-trunc", "--filter", "dangling=true"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def test_one_image_for_every_service_and_a_rebuild_leaves_nothing_untagged(stack: Stack) -> None:
    image = image_id(IMAGE)
    containers = stack.containers()
    assert len(containers) == len(SERVERS) + 3  # the servers, the master, two workers
    assert {stack.inspect_id(c["ID"])["Image"] for c in containers} == {image}
    before = untagged_images()
    started = time.monotonic()
    built = stack.compose("build", timeout=900)
    stack.timings["rebuild"] = time.monotonic() - started
    left = untagged_images() - before
    if image_id(IMAGE) == image:
        assert left == set(), built.stdout[-2000:]
    else:  # the tree changed since the first build: the one previous image, never one per service
        assert left <= {image}, (left, built.stdout[-2000:])


def test_each_role_declares_only_its_own_ports(stack: Stack) -> None:
    def exposed(info: dict) -> set[str]:
        # Compose's `expose: ["8000"]` may appear as "8000" next to the "8000/tcp" of the mapping.
        return {p if "/" in p else f"{p}/tcp" for p in info["Config"].get("ExposedPorts") or {}}

    image = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", IMAGE], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )[0]
    assert exposed(image) == set()  # one image, two roles: the image declares none
    for service in SERVERS:
        assert exposed(stack.inspect(service)) == {"8000/tcp"}, service
    assert exposed(stack.inspect("locust")) == {"8089/tcp", "5557/tcp"}
    for worker in stack.containers("locust-worker"):
        assert exposed(stack.inspect_id(worker["ID"])) == set()


# --- the services ---------------------------------------------------------------------


def test_every_service_is_healthy_and_names_its_model(stack: Stack) -> None:
    state = {c["Service"]: c for c in stack.containers()}
    for service in [*SERVERS, "locust"]:
        assert state[service]["Health"] == "healthy", (service, state[service]["Status"])
    workers = [c for c in stack.containers("locust-worker") if c["State"] == "running"]
    assert len(workers) == 2
    for service, (_, model) in SERVERS.items():
        status, headers, _ = get(stack.url(service, "/whoami"))
        assert status == 200
        assert headers[HEADER_MODEL.lower()] == model, service
        assert {h.lower() for h in IDENTITY_HEADERS} <= set(headers)


def test_servers_share_one_cpu_budget_and_run_unprivileged(stack: Stack) -> None:
    budgets = set()
    for service in SERVERS:
        info = stack.inspect(service)
        budgets.add(info["HostConfig"]["NanoCpus"])
        assert "LAB_CPUS=1" in info["Config"]["Env"], service  # what the server was told it has
        assert info["Config"]["User"] not in ("", "root", "0"), service
        assert info["Config"]["Image"] == IMAGE
    assert budgets == {1_000_000_000}  # LAB_CPUS defaults to 1 CPU, the same for all


def gunicorn_worker_count(stack: Stack) -> int:
    """Processes in the gunicorn container, less the arbiter."""
    top = stack.compose("top", "gunicorn").stdout
    return sum(1 for line in top.splitlines() if "gunicorn" in line and "app:app" in line) - 1


def test_gunicorn_runs_four_sync_workers_unless_overridden(stack: Stack) -> None:
    assert gunicorn_worker_count(stack) == 4
    stack.env["GUNICORN_CMD_ARGS"] = "--workers 2"
    try:
        stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "gunicorn", timeout=180)
        assert gunicorn_worker_count(stack) == 2
    finally:
        del stack.env["GUNICORN_CMD_ARGS"]
        stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "gunicorn", timeout=180)
    assert gunicorn_worker_count(stack) == 4


BYO_IMAGE = "wsgilab-test-byo:latest"
BYO_APP = """\
def app(environ, start_response):
    body = b"ok" if environ["PATH_INFO"] == "/health" else b"hello from myapp"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def test_bring_your_own_app(stack: Stack, tmp_path: Path) -> None:
    """docs/docker.md's recipe: an image on top of ours, an override file, two variables."""
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text(BYO_APP)
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nCOPY myapp/ /srv/wsgi-lab/myapp/\n")
    override = tmp_path / "compose.yml"
    override.write_text(f"services:\n  lab-threaded: {{image: {BYO_IMAGE}, build: !reset null}}\n")
    subprocess.run(
        ["docker", "build", "-q", "-t", BYO_IMAGE, str(tmp_path)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    stack.env |= {"LAB_WSGI_APP": "loadtest.inserver.byo:app", "LAB_BYO_APP": "myapp:app"}
    try:
        stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "lab-threaded", files=(override,))
        status, headers, body = get(stack.url("lab-threaded", "/"))
        assert (status, body) == (200, b"hello from myapp")
        # loadtest.inserver.byo adds the identity headers, so timelines work for any app.
        assert headers[HEADER_MODEL.lower()] == "lab-threaded"
        assert {h.lower() for h in IDENTITY_HEADERS} <= set(headers)
    finally:
        for var in ("LAB_WSGI_APP", "LAB_BYO_APP"):
            del stack.env[var]
        stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "lab-threaded")
        subprocess.run(["docker", "rmi", "-f", BYO_IMAGE], capture_output=True, timeout=120)
    assert get(stack.url("lab-threaded", "/"))[2] == b"Hello Flask"


def overlapping_pairs(intervals: list[tuple[float, float]]) -> int:
    """Pairs of requests that were inside the app at the same time (10 ms slack for clocks)."""
    pairs = [(a, b) for i, a in enumerate(intervals) for b in intervals[i + 1 :]]
    return sum(1 for a, b in pairs if a[0] < b[1] - 0.01 and b[0] < a[1] - 0.01)


@pytest.mark.parametrize("service", ["lab-single", "lab-threaded"])
def test_concurrent_sleeps_serialise_or_overlap(stack: Stack, service: str) -> None:
    """4 x /sleep?s=0.5 at once: one at a time in single mode, together in threaded mode."""
    elapsed, answers = concurrent_sleeps(stack.ports[service])
    intervals = [(float(h["x-request-start"]), float(h["x-request-end"])) for h in answers]
    if service == "lab-single":
        assert elapsed >= 1.8, elapsed
        assert overlapping_pairs(intervals) == 0, intervals
        assert len({h["x-worker-pid"] for h in answers}) == 1
    else:
        assert elapsed <= 1.2, elapsed
        assert overlapping_pairs(intervals) == 6, intervals  # every pair ran side by side
        assert len({h["x-worker-thread"] for h in answers}) == 4


def requests_served(stack: Stack, service: str) -> int:
    return json.loads(get(stack.url(service, "/whoami"))[2])["requests_served"]


def test_locust_swarm_through_two_workers(stack: Stack) -> None:
    """A swarm started through the master's HTTP API, as the web UI does it.

    The Host field says lab-single, the target dropdown says lab-threaded: the
    target must win, and the requests must land on lab-threaded.
    """
    wait_until(lambda: locust_stats(stack)["worker_count"] == 2, 60, "2 locust workers to connect")
    before = {s: requests_served(stack, s) for s in ("lab-single", "lab-threaded")}
    form = {
        "user_count": "4",
        "spawn_rate": "4",
        "host": "http://lab-single:8000",
        "target": "lab-threaded",
        "user_classes": "IoUser",
        "sleep_s": "0.1",
    }
    started = post(stack.url("locust", "/swarm"), form)
    assert started["success"], started
    assert started["host"] == "http://lab-threaded:8000"  # the run's host before the run starts
    try:

        def counted() -> dict | None:
            stats = locust_stats(stack)
            total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
            return stats if total["num_requests"] >= 30 else None

        stats = wait_until(counted, 60, "locust to count 30 requests")
        total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
        assert total["num_failures"] == 0, stats["errors"]
        assert stats["errors"] == []
        assert stats["user_count"] == 4
        # Both workers carry users: the load really is distributed.
        assert sorted(w["user_count"] for w in stats["workers"]) == [2, 2]
    finally:
        stopped = post(stack.url("locust", "/stop"))
    assert stopped["success"], stopped
    wait_until(lambda: locust_stats(stack)["state"] == "stopped", 30, "the swarm to stop")
    counted_total = next(s for s in locust_stats(stack)["stats"] if s["name"] == "Aggregated")["num_requests"]
    assert requests_served(stack, "lab-threaded") - before["lab-threaded"] >= counted_total
    assert requests_served(stack, "lab-single") - before["lab-single"] < 10  # health checks, /whoami
    # The workers forwarded every response's identity headers to the master.
    summary = wait_until(
        lambda: re.search(r"identity: (\d+) responses, 1 pid\(s\)", stack.compose("logs", "locust").stdout),
        30,
        "the master's identity summary",
    )
    assert int(summary.group(1)) > 0


def container_ip(stack: Stack, service: str) -> str:
    (network,) = stack.inspect(service)["NetworkSettings"]["Networks"].values()
    return network["IPAddress"]


def test_localhost_inside_compose_is_refused_naming_the_services(stack: Stack) -> None:
    """docs/docker.md's host port typed into Host: inside compose, localhost is the locust container."""
    form = {"user_count": "2", "spawn_rate": "2", "host": "http://localhost:8001", "user_classes": "IoUser"}
    refused = post(stack.url("locust", "/swarm"), form)
    assert not refused["success"], refused
    message = refused["message"]
    assert message.startswith("http://localhost:8001 cannot be reached from the load generator"), message
    assert "localhost is the locust container itself" in message
    assert "http://lab-single:8000" in message and "http://flask-dev-processes:8000" in message
    assert locust_stats(stack)["state"] in ("ready", "stopped")
    assert message in stack.compose("logs", "locust").stdout


def test_workers_compose_file_needs_only_the_master_address(stack: Stack) -> None:
    workers = ROOT / "docker" / "workers.yml"
    base = ["docker", "compose", "-f", str(workers), "config", "--format", "json"]
    missing = subprocess.run(base, capture_output=True, text=True, timeout=60, env=stack.env)
    assert missing.returncode != 0 and "LOCUST_MASTER_HOST" in missing.stderr
    env = {**stack.env, "LOCUST_MASTER_HOST": "10.0.0.5"}
    config = json.loads(
        subprocess.run(base, capture_output=True, text=True, timeout=60, env=env, check=True).stdout
    )
    (service,) = config["services"].values()
    assert service["image"] == IMAGE
    assert service["command"][-5:] == ["--worker", "--master-host", "10.0.0.5", "--master-port", "5557"]


def test_a_worker_on_another_machine_joins_the_master(stack: Stack, tmp_path: Path) -> None:
    """An extra generator machine, played by a local process outside the compose project.

    It connects to the master's published 5557. The URL it loads must be reachable
    from it: a compose service name is not, so the test types the server's address
    on the Compose network (routable from this host) into Host, as docker/workers.yml
    tells people to type the servers' published address.
    """
    url = f"http://{container_ip(stack, 'lab-threaded')}:8000"
    cmd = [sys.executable, "-m", "locust", "-f", "loadtest/generator/locustfile.py", "--worker"]
    cmd += ["--master-host", "127.0.0.1", "--master-port", str(stack.ports["master"])]
    env = {**os.environ, "LAB_HOSTS": "", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: locust_stats(stack)["worker_count"] == 3, 60, "the outside worker to join")
        before = requests_served(stack, "lab-threaded")
        form = {"user_count": "3", "spawn_rate": "3", "host": url, "user_classes": "IoUser", "sleep_s": "0.1"}
        started = post(stack.url("locust", "/swarm"), form)
        assert started["success"] and started["host"] == url, started

        def counted() -> dict | None:
            stats = locust_stats(stack)
            total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
            return stats if total["num_requests"] >= 30 and stats["user_count"] == 3 else None

        stats = wait_until(counted, 60, "30 requests from three workers")
        outside = [w for w in stats["workers"] if w["id"].startswith(socket.gethostname() + "_")]
        assert [w["user_count"] for w in outside] == [1], stats["workers"]
        total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
        assert total["num_failures"] == 0, (stats["errors"], log.read_text()[-2000:])
    finally:
        post(stack.url("locust", "/stop"))
        stop(worker)
    assert requests_served(stack, "lab-threaded") - before >= 30


def test_compare_profile_writes_reports_into_the_mounted_dir(stack: Stack) -> None:
    # The files must belong to whoever owns the host directory, not to the image's uid.
    if os.geteuid() == 0:
        os.chown(stack.results, 12345, 12345)
    owner = stack.results.stat().st_uid
    stack.env |= {"COMPARE_DURATION": "3", "COMPARE_USERS": "4"}
    try:
        started = time.monotonic()
        run = stack.compose("--profile", "compare", "run", "--rm", "compare", timeout=600)
        stack.timings["compare"] = time.monotonic() - started
    finally:
        for var in ("COMPARE_DURATION", "COMPARE_USERS"):
            del stack.env[var]
    (out,) = [d for d in stack.results.iterdir() if d.is_dir()]  # results/<UTC timestamp>/
    assert str(out) in run.stdout  # the path on the host, where the reader looks
    assert "/srv/wsgi-lab" not in run.stdout
    assert out.stat().st_uid == owner
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
        assert (out / name).stat().st_uid == owner, name
    # Each service was measured through the Compose network and answered as itself.
    rows = {row["target"]: row for row in json.loads((out / "summary.json").read_text())["rows"]}
    assert set(rows) == {model for _, model in SERVERS.values()}
    for model, row in rows.items():
        assert (row["error"], row["failures"], row["models_seen"]) == ("", 0, [model]), row
        assert row["requests"] > 0, row
        assert row["cpu_limit"] == 1, row  # the limit LAB_CPUS set, as the server saw it (cgroup v1 or v2)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # answer the 302 itself, do not follow it
        return None


def session_opener() -> urllib.request.OpenerDirector:
    """A client with a cookie jar (a login session) that shows redirects instead of following them."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(), NoRedirect())


def answer(opener, url: str, form: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, Location, body) of a GET, or of a POST of ``form``."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=10) as r:
            return r.status, r.headers.get("Location", ""), r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Location", ""), err.read()


def published_ip(stack: Stack, service: str, port: str) -> str:
    (binding,) = stack.inspect(service)["HostConfig"]["PortBindings"][port]
    return binding["HostIp"]


def test_published_beyond_loopback_the_ui_asks_a_password_and_loads_only_lab_hosts(stack: Stack) -> None:
    """LAB_BIND_ADDR=0.0.0.0 for the master and one server (the rest stay as they are).

    Everything connects through 127.0.0.1. The arbitrary host is lab-single by its
    Compose-network address, which is not a LAB_HOSTS URL: refused, nothing started.
    """
    exposed = {"LAB_BIND_ADDR": "0.0.0.0", "LAB_MASTER_BIND_ADDR": "127.0.0.1"}
    stack.env |= exposed
    try:
        stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "locust", "lab-single", timeout=180)
        # The UI and the server on every interface, the master port on its own address.
        assert published_ip(stack, "locust", "8089/tcp") == "0.0.0.0"
        assert published_ip(stack, "lab-single", "8000/tcp") == "0.0.0.0"
        assert published_ip(stack, "locust", "5557/tcp") == "127.0.0.1"
        ui = stack.url("locust", "")
        stranger = session_opener()
        for path in ("/", "/stats/requests", "/wsgi-lab/state"):
            status, location, _ = answer(stranger, ui + path)
            assert (status, urllib.parse.urlsplit(location).path) == (302, "/login"), path
        form = {"user_count": "2", "spawn_rate": "2", "user_classes": "IoUser", "target": "lab-single"}
        status, location, _ = answer(stranger, ui + "/swarm", form)
        assert (status, urllib.parse.urlsplit(location).path) == (302, "/login")
        assert answer(stranger, ui + "/login")[0] == 200  # locust's login page

        logs = stack.compose("logs", "locust").stdout
        passwords = re.findall(r"web UI login: password (\S+) \(generated", logs)
        assert len(passwords) == 1, logs[-3000:]
        operator = session_opener()
        assert answer(operator, ui + "/wsgi-lab/login", {"password": "guess"})[:2] == (302, "/login")
        status, location, _ = answer(operator, ui + "/wsgi-lab/login", {"password": passwords[0]})
        assert (status, urllib.parse.urlsplit(location).path) == (302, "/")
        status, _, page = answer(operator, ui + "/")
        assert status == 200 and b"wsgi-lab/ui.js" in page

        arbitrary = f"http://{container_ip(stack, 'lab-single')}:8000"
        status, _, body = answer(operator, ui + "/swarm", {**form, "target": "none", "host": arbitrary})
        refused = json.loads(body)
        assert status == 200 and not refused["success"], refused
        assert refused["message"].startswith(f"{arbitrary} is not one of this lab's servers"), refused
        assert "http://lab-single:8000" in refused["message"] and "LAB_ALLOW_ANY_HOST=1" in refused["message"]
        assert refused["message"] in stack.compose("logs", "locust").stdout
        # Nothing started: the fresh master counts no request (lab-single's own counter
        # also moves with its health checks, so the master's count is the witness here).
        stats = locust_stats_with(operator, stack)
        total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
        assert (stats["state"], total["num_requests"]) == ("ready", 0), stats
        # A LAB_HOSTS server passes the same guard.
        started = json.loads(answer(operator, ui + "/swarm", form)[2])
        assert started["success"] and started["host"] == "http://lab-single:8000", started
        answer(operator, ui + "/stop", {})
    finally:
        for var in exposed:
            del stack.env[var]
        stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "locust", "lab-single", timeout=180)
    assert published_ip(stack, "locust", "8089/tcp") == "127.0.0.1"
    assert get(stack.url("locust", "/"))[0] == 200  # open again on loopback


def locust_stats_with(opener, stack: Stack) -> dict:
    return json.loads(answer(opener, stack.url("locust", "/stats/requests"))[2])


def test_stop_is_graceful_and_clean(stack: Stack) -> None:
    """SIGTERM reaches each server (exec form): in-flight request finished, exit 0, no kill.

    One service at a time, each with a request in flight, so each is timed on
    its own: Docker's SIGKILL would come only after the 8 s grace period (and
    give exit status 137).
    """
    for service in [s for s in SERVERS if s not in DIE_OF_SIGTERM]:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(get, stack.url(service, "/sleep?s=1"), 30)
            time.sleep(0.4)  # the request has reached the server
            started = time.monotonic()
            stack.compose("stop", service, timeout=60)
            elapsed = stack.timings[f"stop {service}"] = time.monotonic() - started
            status = in_flight.result()[0]
        assert status == 200, service
        assert elapsed < GRACEFUL_TIMEOUT, (service, elapsed)
        state = stack.inspect(service)["State"]
        assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 0, False), service
    for service in DIE_OF_SIGTERM:
        started = time.monotonic()
        stack.compose("stop", service, timeout=60)
        elapsed = stack.timings[f"stop {service}"] = time.monotonic() - started
        assert elapsed < GRACEFUL_TIMEOUT, (service, elapsed)
        assert stack.inspect(service)["State"]["ExitCode"] == 143, service
    # Locust too stops at once, not after Docker's 10 s kill.
    started = time.monotonic()
    stack.compose("stop", "locust-worker", "locust", timeout=60)
    elapsed = stack.timings["stop locust"] = time.monotonic() - started
    assert elapsed < GRACEFUL_TIMEOUT, elapsed


def test_down_leaves_nothing_behind(stack: Stack) -> None:
    stack.compose("down", "-v", "--remove-orphans", "--timeout", "15", timeout=180)
    assert project_leftovers() == {"containers": [], "networks": [], "volumes": []}
    print(f"\ncompose timings: {', '.join(f'{k} {v:.1f} s' for k, v in stack.timings.items())}")
