"""The one target registry: docker-compose.yml, LAB_HOSTS and the capacity rules agree with it."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
import yaml

from loadtest import targets
from loadtest.catalog import parse_hosts
from loadtest.run.processes import free_port, start, stop, wait_healthy
from tests.support import ROOT

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


def test_lab_hosts_lists_exactly_the_registry():
    for service in ("locust", "locust-worker"):
        hosts = parse_hosts(SERVICES[service]["environment"]["LAB_HOSTS"])
        assert list(hosts) == list(targets.TARGETS), service
        for name, url in hosts.items():
            assert url == f"http://{targets.TARGETS[name].compose_service}:{targets.COMPOSE_PORT}"


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
    ],
)
def test_capacity_follows_the_options_the_target_runs_with(name, extra, users, expected):
    target = targets.TARGETS[name]
    if extra:
        target = target.with_args(extra)
        assert target.command("app:app", 9)[-1] == "app:app" or name.startswith("flask")
    assert target.capacity(users) == expected


def test_bench_variants_are_registry_servers_with_other_options():
    for variant in targets.BENCH_VARIANTS.values():
        base = next(t for t in targets.REGISTRY if t.compose_service == variant.compose_service)
        assert variant.options == base.options and variant.extra and variant.kind == base.kind
    assert targets.BENCH_VARIANTS["gunicorn-sync-w2"].capacity(10) == 2
    assert targets.BENCH_VARIANTS["lab-event-t4"].capacity(10) == 4


def usage_of(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_lab/usage", timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("name", ["gunicorn-sync", "lab-forking"])
def test_usage_endpoint_reports_the_whole_tree_from_its_session_leader(tmp_path, name):
    """Served by a worker or a forked child, the root is the process compare started (its session leader)."""
    port = free_port()
    target = (
        targets.TARGETS[name].with_args("--workers 2") if name == "gunicorn-sync" else targets.TARGETS[name]
    )
    proc = start(target.command("app:app", port), tmp_path, name, {"PYTHONPATH": str(ROOT), "PATH": ""}, ROOT)
    try:
        wait_healthy(port, proc, timeout=30)
        first = usage_of(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cpu?ms=200", timeout=10) as r:
            r.read()
        second = usage_of(port)
    finally:
        stop(proc)
    assert first["root_pid"] == second["root_pid"] == proc.pid
    if name == "gunicorn-sync":
        assert first["pids"] == 3  # arbiter + 2 workers
    assert second["cpu_s"] - first["cpu_s"] >= 0.15  # the 200 ms of /cpu, reaped child or live worker
    assert first["memory_kind"] in ("pss", "rss") and first["memory_bytes"] > 5 * 2**20
