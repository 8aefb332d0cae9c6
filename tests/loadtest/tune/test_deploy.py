"""deploy/compose.yml and deploy/kubernetes.yaml: valid by the Kubernetes schema and `compose config`."""

from __future__ import annotations

import os
import shlex
import subprocess

import kubernetes_validate
import pytest
import yaml

from loadtest.registry import targets
from loadtest.tune import deploy
from loadtest.tune.candidates import Shape, family

K8S_VERSION = "1.30.0"  # a version every maintained cluster has passed


def compose_works() -> bool:
    try:
        return (
            subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def result(name: str, workers: int, threads: int | None, app: str = "myproject.wsgi:application") -> dict:
    """What report.document writes for a recommendation, with the command the shape really deploys."""
    shape = Shape(family(targets.TARGETS[name]), workers, threads)
    return {
        "app": app,
        "paths": [{"path": "/orders?limit=5", "weight": 3.0}, {"path": "/slow", "weight": 1.0}],
        "slo": {"p95_ms": 300.0},
        "budget": {"cpus": 2, "memory_mb": 768.0},
        "recommended": {
            "command": shape.deploy_command(app),
            "server": shape.family.server,
            "rate_at_slo": 1979.1,
            "rate_at_slo_lower_bound": True,
            "memory_mb": 140.0,
        },
    }


SHAPES = [("gunicorn-gthread", 2, 32), ("gunicorn-gevent", 2, None), ("granian", 2, 16), ("uwsgi", 2, 8),
          ("waitress", 1, 32), ("lab-event", 1, 32)]  # fmt: skip


@pytest.mark.parametrize(("name", "workers", "threads"), SHAPES)
def test_the_kubernetes_file_validates_and_carries_the_command_and_the_budget(
    tmp_path, name, workers, threads
):
    doc = result(name, workers, threads)
    written = deploy.write(tmp_path, doc)
    assert [p.name for p in written] == ["compose.yml", "kubernetes.yaml"]
    text = (tmp_path / "deploy" / "kubernetes.yaml").read_text()
    assert "&id" not in text  # no YAML anchors: readable by hand
    resources = list(yaml.safe_load_all(text))
    assert [r["kind"] for r in resources] == ["Deployment", "Service"]
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
    pod = resources[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == shlex.split(doc["recommended"]["command"])
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "768Mi"}
    assert container["resources"]["requests"]["memory"] == f"{round(140 * (1 + deploy.HEADROOM))}Mi"
    assert container["readinessProbe"]["httpGet"]["path"] == "/orders?limit=5"
    grace = {"gunicorn": 5, "granian": 5, "uwsgi": 60, "waitress": 30, "lab": 30}[
        doc["recommended"]["server"]
    ]
    assert pod["terminationGracePeriodSeconds"] == grace + deploy.STOP_MARGIN_S
    assert "at least 1979" in resources[0]["metadata"]["annotations"]["wsgi-lab/rate-at-slo"]


@pytest.mark.parametrize(("name", "workers", "threads"), SHAPES[:4])
def test_the_command_runs_outside_this_repository(name, workers, threads):
    """A package-index server: `python -m gunicorn`/`granian`, `uwsgi` by name -- never `python -m server`."""
    argv = shlex.split(result(name, workers, threads)["recommended"]["command"])
    assert argv[0] in ("python", "uwsgi") and "server" not in argv[:3] and not argv[0].startswith("/")


def test_the_health_check_needs_only_python(tmp_path):
    """The image has no curl: the check is python -c with the standard library; TCP for a locustfile."""
    doc = result("gunicorn-gthread", 2, 16)
    check = deploy.compose(doc)["services"][deploy.NAME]["healthcheck"]["test"]
    assert (
        check[:3] == ["CMD", "python", "-c"]
        and "urllib.request" in check[3]
        and "/orders?limit=5" in check[3]
    )
    compile(check[3], "<healthcheck>", "exec")
    doc["paths"] = []
    assert "socket" in deploy.compose(doc)["services"][deploy.NAME]["healthcheck"]["test"][3]
    assert (
        "tcpSocket"
        in deploy.kubernetes(doc)[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    )
    doc["recommended"] = None
    assert deploy.write(tmp_path / "none", doc) == []


@pytest.mark.skipif(
    not compose_works() and not os.environ.get("REQUIRE_DOCKER"), reason="no `docker compose` here"
)
def test_the_compose_file_passes_docker_compose_config(tmp_path):
    doc = result("gunicorn-gthread", 2, 32)
    deploy.write(tmp_path, doc)
    path = tmp_path / "deploy" / "compose.yml"
    done = subprocess.run(
        ["docker", "compose", "-f", str(path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    service = yaml.safe_load(done.stdout)["services"][deploy.NAME]
    assert service["command"] == shlex.split(doc["recommended"]["command"])
    assert service["cpus"] == 2.0 and service["mem_limit"] == str(768 * 2**20)
    assert service["healthcheck"]["test"][:3] == ["CMD", "python", "-c"]


def test_the_users_image_and_a_fractional_quota_reach_both_files(tmp_path):
    """--image names the image the files run (default: the project's); --cpus 1.5 stays 1.5, not 2."""
    doc = result("gunicorn-gthread", 2, 16)
    assert deploy.compose(doc)["services"][deploy.NAME]["image"] == targets.COMPOSE_IMAGE
    doc["budget"]["cpus"] = 1.5
    deploy.write(tmp_path, doc, image="registry.example/team/shop:1.4")
    service = yaml.safe_load((tmp_path / "deploy" / "compose.yml").read_text())["services"][deploy.NAME]
    assert service["image"] == "registry.example/team/shop:1.4" and service["cpus"] == 1.5
    deployment = next(yaml.safe_load_all((tmp_path / "deploy" / "kubernetes.yaml").read_text()))
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/team/shop:1.4"
    assert container["resources"]["limits"]["cpu"] == "1.5"
