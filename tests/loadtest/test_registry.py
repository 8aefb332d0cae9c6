"""The one target registry: docker-compose.yml, LAB_HOSTS and the capacity rules agree with it."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from loadtest.registry import targets
from loadtest.registry.hosts import parse_hosts
from loadtest.run.local import LocalRunner
from loadtest.run.plan import STORIES
from loadtest.run.runner import Launch
from tests.support import ROOT, concurrent_sleeps

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def default_host_port(service: dict) -> int:
    """8001 from "${LAB_BIND_ADDR:-127.0.0.1}:${LAB_PORT_SINGLE:-8001}:8000"."""
    (mapping,) = service["ports"]
    host_part, container = mapping.rsplit(":", 1)
    assert int(container) == targets.COMPOSE_PORT
    match = re.search(r"\$\{[A-Z_]+:-(\d+)\}$", host_part) or re.search(r":(\d+)$", host_part)
    assert match, mapping
    return int(match[1])


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_every_target_has_its_compose_service(name):
    target = targets.TARGETS[name]
    assert target.compose_service in SERVICES, f"no compose service {target.compose_service} for {name}"
    service = SERVICES[target.compose_service]
    assert service["environment"]["LAB_SERVER_MODEL"] == name
    assert default_host_port(service) == target.host_port


def test_every_service_runs_the_one_image():
    """docker-compose.yml's image is ``COMPOSE_IMAGE``: what --runtime docker builds and deploy/ names."""
    images = {s["image"] for s in SERVICES.values() if "image" in s}
    assert images == {targets.COMPOSE_IMAGE}


def test_lab_hosts_lists_exactly_the_registry():
    for service in ("locust", "locust-worker"):
        hosts = parse_hosts(SERVICES[service]["environment"]["LAB_HOSTS"])
        assert list(hosts) == list(targets.TARGETS), service
        for name, url in hosts.items():
            assert url == f"http://{targets.TARGETS[name].compose_service}:{targets.COMPOSE_PORT}"


def test_the_master_knows_each_servers_published_port():
    """LAB_PUBLISHED_PORTS (the allowlist's published URLs) names each server's own port variable."""
    spec = SERVICES["locust"]["environment"]["LAB_PUBLISHED_PORTS"]
    entries = dict(item.split("=", 1) for item in spec.split(","))
    assert list(entries) == list(targets.TARGETS)
    for name, port in entries.items():
        (mapping,) = SERVICES[targets.TARGETS[name].compose_service]["ports"]
        # The same variable with the same default as the service's own mapping.
        assert mapping.endswith(f":{port}:{targets.COMPOSE_PORT}"), (name, mapping)


def test_host_ports_are_distinct():
    ports = [t.host_port for t in targets.TARGETS.values()]
    assert len(set(ports)) == len(ports)


def test_compare_service_passes_git_commit_and_host_dir():
    env = SERVICES["compare"]["environment"]
    assert "LAB_GIT_COMMIT" in env and "LAB_RESULTS_HOST_DIR" in env


@pytest.mark.parametrize(
    ("name", "extra", "users", "expected"),
    [
        ("gunicorn-sync", "", 10, 4),
        ("gunicorn-sync", "--workers 1", 10, 1),
        ("gunicorn-sync", "-w 2", 10, 2),
        ("gunicorn-gthread", "--threads 8", 10, 16),
        ("lab-threaded", "", 7, 7),
        ("lab-event", "", 10, 8),
        ("lab-event", "--threads 4", 10, 4),
        ("waitress", "--threads=6", 10, 6),
        ("flask-dev-processes", "", 10, 4),
        ("lab-single", "", 10, 1),
        ("granian", "", 10, 8),
        ("granian", "--blocking-threads 1", 10, 2),
        ("granian", "--workers=1", 10, 4),
        ("granian", "--backpressure 2", 10, 4),
        ("uwsgi", "", 10, 4),
        ("uwsgi", "-p 2", 10, 2),
        ("uwsgi", "--workers 3", 10, 3),
        ("uwsgi", "--threads 4", 10, 16),
        ("uwsgi", "--gevent 100", 10, 400),
    ],
)
def test_capacity_follows_the_options_the_target_runs_with(name, extra, users, expected):
    target = targets.TARGETS[name]
    if extra:
        target = target.with_args(extra)
        command = target.command("app:app", 9)
        assert "app:app" in command and " ".join(extra.split()) in " ".join(command)
    assert target.capacity(users) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, 512),  # granian's own default: 1 worker, 1024 // 2 blocking threads
        ({"workers": 4}, 4 * 128),
        ({"workers": 2, "backlog": 256}, 2 * 64),
        ({"workers": 2, "blocking_threads": 300, "backpressure": 10}, 20),
    ],
)
def test_granian_capacity_follows_granians_own_defaults(options, expected):
    assert targets.granian_capacity(options, 10) == expected


def test_uwsgi_spellings_are_its_own():
    """To uWSGI ``-w`` names the app module, not a worker count."""
    spellings = targets.COUNT_OPTIONS_BY_KIND["uwsgi"]
    assert targets.option_counts(["-w", "app:app", "-p", "3"], spellings) == {"processes": 3}
    assert targets.uwsgi_capacity({"processes": 2, "threads": 8, "gevent": 50}, 10) == 100


def compose_defaults(word: str) -> str:
    """``${LAB_X:-5}`` -> ``5``: a compose command as it runs with no knobs set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", word)


@pytest.mark.parametrize(
    ("name", "program"), [("granian", ["python", "-m", "granian"]), ("uwsgi", ["uwsgi"])]
)
def test_compose_runs_the_registry_command(name, program):
    """Same options in Docker as in a local comparison: only the program path and the bind address differ."""
    target = targets.TARGETS[name]
    command = [compose_defaults(w) for w in SERVICES[target.compose_service]["command"]]
    local = target.command("app:app", targets.COMPOSE_PORT, "0.0.0.0")
    assert command[: len(program)] == program
    assert Path(local[0]).name.startswith(program[0]) and local[1 : len(program)] == program[1:]
    assert command[len(program) :] == local[len(program) :]


def test_bench_variants_are_registry_servers_with_other_options():
    for variant in targets.BENCH_VARIANTS.values():
        base = next(t for t in targets.REGISTRY if t.compose_service == variant.compose_service)
        assert variant.options == base.options and variant.extra and variant.kind == base.kind
    assert targets.BENCH_VARIANTS["gunicorn-sync-w2"].capacity(10) == 2
    assert targets.BENCH_VARIANTS["lab-event-t4"].capacity(10) == 4
    pinned = targets.BENCH_VARIANTS["lab-threaded-pinned"]
    assert pinned.capacity(10) == 10 and pinned.extra == ("--cpu-affinity", targets.first_cpu())


def usage_of(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_lab/usage", timeout=10) as r:
        return json.loads(r.read())


def wait_for_boots(stderr_log, workers: int, timeout: float) -> int:
    """Workers gunicorn says it booted ("Booting worker with pid"), waiting up to ``timeout`` for them."""
    deadline = time.monotonic() + timeout
    while True:
        booted = stderr_log.read_text(errors="replace").count("Booting worker with pid")
        if booted >= workers or time.monotonic() > deadline:
            return booted
        time.sleep(0.05)


@pytest.mark.parametrize("name", ["gunicorn-sync", "lab-forking"])
def test_usage_endpoint_reports_the_whole_tree_from_its_session_leader(tmp_path, name):
    """Served by a worker or a forked child, the root is the process compare started (its session leader)."""
    target = (
        targets.TARGETS[name].with_args("--workers 2") if name == "gunicorn-sync" else targets.TARGETS[name]
    )
    with LocalRunner(
        Launch(name=name, target=target, log_dir=tmp_path, env={"PATH": ""}, cwd=ROOT)
    ) as server:
        assert server.start() and server.wait_ready(30), server.problem
        if name == "gunicorn-sync":  # the first answer may come before the second worker has booted
            booted = wait_for_boots(server.stderr_log, 2, timeout=30)
            assert booted == 2, server.stderr_tail()
        first = usage_of(server.port)
        with urllib.request.urlopen(f"{server.url}/cpu?ms=200", timeout=10) as r:
            r.read()
        second = usage_of(server.port)
    assert first["root_pid"] == second["root_pid"] == server.pid
    if name == "gunicorn-sync":
        assert first["pids"] == 3  # arbiter + 2 workers
    assert second["cpu_s"] - first["cpu_s"] >= 0.15  # the 200 ms of /cpu, reaped child or live worker
    assert first["memory_kind"] in ("pss", "rss") and first["memory_bytes"] > 5 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize(("name", "pids"), [("granian", 2), ("uwsgi", 4)])
def test_new_servers_start_from_the_registry_and_serve_from_their_workers(tmp_path, name, pids):
    """Started from the registry's command, each answers with its X-Server-Model from its workers' pids."""
    launch = Launch(name=name, target=targets.TARGETS[name], log_dir=tmp_path, env={"PATH": ""}, cwd=ROOT)
    with LocalRunner(launch) as server:
        assert server.start() and server.wait_ready(60), server.problem
        _, results = concurrent_sleeps(server.port, n=pids, seconds=1.0)
    assert {r["x-server-model"] for r in results} == {name}
    served_by = {int(r["x-worker-pid"]) for r in results}
    assert server.pid not in served_by  # a worker answered, not the master
    assert 1 <= len(served_by) <= pids


def test_full_story_has_granian_and_uwsgi_and_the_default_does_not():
    assert {"granian", "uwsgi"} <= set(STORIES["full"]["targets"])
    assert not {"granian", "uwsgi"} & set(STORIES["default"]["targets"])


def test_roles_are_the_registrys_and_agree_with_their_kinds():
    """Our own servers are the ``lab`` kind; bench's anchors and tune's baseline are read from the roles."""
    from loadtest.bench.goals import NATIVE, OURS
    from loadtest.registry.targets import BENCH_VARIANTS, TARGETS, Role, with_role
    from loadtest.tune import candidates, cli

    every = {**TARGETS, **BENCH_VARIANTS}
    assert {n for n, t in every.items() if Role.OURS in t.roles} == {
        n for n, t in every.items() if t.kind == "lab"
    }
    assert NATIVE == ("granian", "uwsgi")
    assert OURS == (
        "lab-single", "lab-single-h11", "lab-threaded", "lab-threaded-pinned", "lab-forking",
        "lab-prefork-w2", "lab-event",
    )  # fmt: skip
    # tune declares these two itself still (tune/cli.py, tune/candidates.py): the same names
    assert with_role(Role.BASELINE) == (candidates.BASELINE_TARGET,)
    assert with_role(Role.DEMONSTRATION) == cli.DEMONSTRATIONS == (
        "lab-single", "lab-forking", "flask-dev", "flask-dev-nothreads", "flask-dev-processes",
    )  # fmt: skip
