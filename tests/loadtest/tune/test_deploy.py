"""deploy/compose.yml and deploy/kubernetes.yaml, checked as a platform team checks them: the Kubernetes
schema (kubernetes-validate, strict), checkov's Kubernetes checks (offline) and `docker compose config`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from loadtest.registry import targets
from loadtest.tune import deploy, fleet
from loadtest.tune.candidates import Shape, family
from tests.support import ROOT, engine_answers

K8S_VERSION = "1.30.0"  # a version every maintained cluster has passed
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
TEAM_IMAGE = "registry.example/team/shop:1.4"


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
            "key": shape.key,
            "command": shape.deploy_command(app),
            "server": shape.family.server,
            "worker_class": shape.family.worker_class,
            "workers": workers,
            "threads": threads,
            "cpus": 2,
            "rate_at_slo": 1979.1,
            "rate_at_slo_interval": None,
            "rate_at_slo_lower_bound": True,
            "memory_mb": 140.0,
        },
        "candidates": [{"key": shape.key, "measurements": [{"start_s": 1.2, "server_cpu_cores": 1.1}]}],
    }


def planned(doc: dict, target_rps: float = 5000, **kwargs) -> dict:
    """The record with a fleet plan, as tune writes it for --target-rps."""
    rounds = doc["candidates"][0]["measurements"]
    doc["fleet"] = fleet.plan(
        target_rps, fleet.replica_of(doc["recommended"], rounds), slo=fleet.slo_text(doc["slo"]), **kwargs
    ).as_dict()
    return doc


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
    assert [r["kind"] for r in resources] == ["Deployment", "Service", "PodDisruptionBudget"]
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
    assert resources[0]["spec"]["replicas"] == deploy.DEFAULT_REPLICAS  # no plan: two, one drainable
    pod = resources[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == shlex.split(doc["recommended"]["command"])
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "768Mi"}
    assert container["resources"]["requests"]["memory"] == f"{round(140 * (1 + deploy.HEADROOM))}Mi"
    assert container["readinessProbe"]["httpGet"]["path"] == "/orders?limit=5"
    # the server's own default graceful timeout: tune's measuring --graceful-timeout 5 stays out
    assert (
        "--graceful-timeout" not in container["command"]
        and "--workers-kill-timeout" not in container["command"]
    )
    grace = {"gunicorn": 30, "granian": 30, "uwsgi": 60, "waitress": 30, "lab": 30}[
        doc["recommended"]["server"]
    ]
    assert pod["terminationGracePeriodSeconds"] == deploy.PRESTOP_S + grace + deploy.STOP_MARGIN_S
    assert "at least 1979" in resources[0]["metadata"]["annotations"]["wsgi-lab/rate-at-slo"]
    if doc["recommended"]["server"] == "gunicorn":
        assert container["command"][-3:-1] == ["--worker-tmp-dir", "/dev/shm"]


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
    doc = planned(result("gunicorn-gthread", 2, 32))
    deploy.write(tmp_path, doc, deploy.Options(env_file="app.env"))
    (tmp_path / "deploy" / "app.env").write_text("SHOP_MODE=production\n")
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
    assert service["read_only"] is True and service["user"] == f"{deploy.IMAGE_UID}:{deploy.IMAGE_UID}"
    assert service["tmpfs"] == ["/tmp"] and service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges:true"]
    assert service["deploy"]["replicas"] == 4  # 5,000 / (1,979 x 0.7) = 3.6
    assert service["environment"] == {"SHOP_MODE": "production"}  # from the env_file the file names


def test_the_users_image_and_a_fractional_quota_reach_both_files(tmp_path):
    """--image names the image the files run (default: the project's); --cpus 1.5 stays 1.5, not 2."""
    doc = result("gunicorn-gthread", 2, 16)
    assert deploy.compose(doc)["services"][deploy.NAME]["image"] == targets.COMPOSE_IMAGE
    doc["budget"]["cpus"] = 1.5
    deploy.write(tmp_path, doc, deploy.Options(image=TEAM_IMAGE))
    service = yaml.safe_load((tmp_path / "deploy" / "compose.yml").read_text())["services"][deploy.NAME]
    assert service["image"] == TEAM_IMAGE and service["cpus"] == 1.5
    deployment = next(yaml.safe_load_all((tmp_path / "deploy" / "kubernetes.yaml").read_text()))
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == TEAM_IMAGE
    assert container["resources"]["limits"]["cpu"] == "1.5"


def test_the_plan_sets_the_replicas_the_autoscaler_and_the_disruption_budget(tmp_path):
    doc = planned(result("gunicorn-gthread", 2, 8), 5000, max_replicas=8)
    deploy.write(tmp_path, doc, deploy.Options(image=TEAM_IMAGE, namespace="shop"))
    text = (tmp_path / "deploy" / "kubernetes.yaml").read_text()
    assert doc["fleet"]["headline"] in text.splitlines()[1]  # the header comment states the plan
    resources = {r["kind"]: r for r in yaml.safe_load_all(text)}
    assert set(resources) == {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    for resource in resources.values():
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        assert resource["metadata"]["namespace"] == "shop"
        assert resource["metadata"]["labels"] == {
            "app.kubernetes.io/name": deploy.NAME,
            "app.kubernetes.io/instance": deploy.NAME,
        }
    assert resources["Deployment"]["spec"]["replicas"] == 4  # 5,000 / (1,979 x 0.7) = 3.6
    hpa = resources["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (4, 8)
    # 1.1 cores at the measured rate, x 0.7 at the planned one, of a 2-core request: 38 %
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 38}
    assert resources["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_the_pod_is_restricted_probed_and_drained(tmp_path):
    """Pod Security Standards restricted; startup covers the measured start; preStop pause before SIGTERM."""
    doc = result("gunicorn-gthread", 2, 8)
    doc["candidates"][0]["measurements"] = [{"start_s": 4.5}, {"start_s": 7.0}]
    pod = deploy.deployment(doc, deploy.Options(image=TEAM_IMAGE, uid=12345, env_file="shop.env"))
    spec = pod["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] == 12345
    assert c["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 12345,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert spec["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= deploy.START_COVER * 7.0
    assert c["livenessProbe"]["failureThreshold"] > c["readinessProbe"]["failureThreshold"]
    pause = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[:2] == ["python", "-c"] and f"sleep({deploy.PRESTOP_S})" in pause[2]
    assert spec["terminationGracePeriodSeconds"] == deploy.PRESTOP_S + 30 + deploy.STOP_MARGIN_S
    assert c["envFrom"] == [{"configMapRef": {"name": deploy.ENV_CONFIGMAP}}]  # a reference, never values
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_the_environment_is_referenced_never_written(tmp_path):
    doc = result("gunicorn-gthread", 2, 8)
    opts = deploy.Options(env_names=("SHOP_DB_URL", "SHOP_MODE"))
    deploy.write(tmp_path, doc, opts)
    compose_text = (tmp_path / "deploy" / "compose.yml").read_text()
    kube_text = (tmp_path / "deploy" / "kubernetes.yaml").read_text()
    service = yaml.safe_load(compose_text)["services"][deploy.NAME]
    assert service["env_file"] == [f"{deploy.NAME}.env"] and "environment" not in service
    (c,) = next(yaml.safe_load_all(kube_text))["spec"]["template"]["spec"]["containers"]
    assert c["envFrom"] == [{"configMapRef": {"name": deploy.ENV_CONFIGMAP}}] and "env" not in c
    assert "SHOP_DB_URL, SHOP_MODE" in kube_text.splitlines()[2]  # named in the header, for the ConfigMap
    assert "envFrom" not in str(deploy.container(doc, deploy.Options()))


def test_the_uid_is_the_project_images():
    assert f"--uid {deploy.IMAGE_UID} " in (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov in its own venv (its pins conflict with requirements.txt), built by the Makefile if absent."""
    if not CHECKOV.exists():
        subprocess.run(["make", "checkov-venv"], cwd=ROOT, check=True, capture_output=True, timeout=900)
    return CHECKOV


def failed_checks(checkov: Path, folder: Path) -> set[str]:
    """checkov's Kubernetes checks on the folder, offline, as a platform team runs them in CI."""
    done = subprocess.run(
        [str(checkov), "--skip-download", "--framework", "kubernetes", "-d", str(folder), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(done.stdout)
    (report,) = report if isinstance(report, list) else [report]
    assert report["check_type"] == "kubernetes" and report["summary"]["passed"] > 50, report["summary"]
    return {c["check_id"] for c in report["results"]["failed_checks"]}


@pytest.mark.parametrize(("name", "workers", "threads"), [("gunicorn-gthread", 2, 8), ("granian", 2, 16)])
def test_checkov_fails_only_the_stated_exceptions(tmp_path, checkov, name, workers, threads):
    doc = planned(result(name, workers, threads))
    deploy.write(tmp_path / "team", doc, deploy.Options(image=TEAM_IMAGE, env_file="shop.env"))
    assert failed_checks(checkov, tmp_path / "team" / "deploy") == set(deploy.CHECKOV_EXCEPTIONS)
    deploy.write(tmp_path / "demo", doc)  # the project's demo image, tagged latest
    assert failed_checks(checkov, tmp_path / "demo" / "deploy") == {
        *deploy.CHECKOV_EXCEPTIONS,
        *deploy.CHECKOV_DEMO_IMAGE,
    }


def test_the_docs_state_every_exception_with_its_reason():
    text = " ".join((ROOT / "docs" / "tune.md").read_text().split())
    for check_id, reason in {**deploy.CHECKOV_EXCEPTIONS, **deploy.CHECKOV_DEMO_IMAGE}.items():
        stated = re.search(rf"- `{check_id}` \([^)]*\): (.*?)\.", text)
        assert stated and stated.group(1).replace("`", "") == reason, (
            f"docs/tune.md states {check_id} otherwise"
        )


@pytest.fixture(scope="module")
def project_image() -> str:
    """The project's image on a real engine (built when its inputs changed), as the container tests use it."""
    if not engine_answers() or not compose_works():
        if os.environ.get("REQUIRE_DOCKER", "") not in ("", "0"):
            pytest.fail("REQUIRE_DOCKER is set but no Docker engine answers")
        pytest.skip("no Docker engine")
    from loadtest.run import engine, image

    client = engine.connect()
    try:
        return image.project_image(client, print)
    finally:
        client.close()


@pytest.mark.slow
def test_the_compose_file_serves_read_only_and_non_root(tmp_path, project_image):
    """The restricted settings do not break the server: every replica turns healthy, as uid 10001, on a
    read-only root filesystem (gunicorn's heartbeat in /dev/shm). No host port is published here."""
    doc = planned(result("gunicorn-gthread", 2, 4, app=targets.OUR_APP), 1000)
    doc["budget"]["cpus"] = 0.5
    deploy.write(tmp_path, doc, deploy.Options(image=project_image))
    folder = tmp_path / "deploy"
    (folder / "no-ports.yml").write_text(f"services:\n  {deploy.NAME}:\n    ports: !reset []\n")
    project = f"wsgilab-deploytest-{os.getpid()}"
    base = [
        "docker",
        "compose",
        "-p",
        project,
        "-f",
        str(folder / "compose.yml"),
        "-f",
        str(folder / "no-ports.yml"),
    ]
    try:
        up = subprocess.run(
            [*base, "up", "-d", "--wait", "--wait-timeout", "120"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert up.returncode == 0, up.stderr[-2000:]
        ps = subprocess.run([*base, "ps", "--format", "json"], capture_output=True, text=True, timeout=60)
        states = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
        assert len(states) == doc["fleet"]["replicas"] and all(s["Health"] == "healthy" for s in states)
        probe = "open('/probe', 'w')"
        run = [*base, "exec", "-T", deploy.NAME]
        whoami = subprocess.run([*run, "id", "-u"], capture_output=True, text=True, timeout=60)
        assert whoami.stdout.strip() == str(deploy.IMAGE_UID)
        write = subprocess.run([*run, "python", "-c", probe], capture_output=True, text=True, timeout=60)
        assert write.returncode != 0 and "Read-only file system" in write.stderr
    finally:
        subprocess.run([*base, "down", "-t", "5"], capture_output=True, timeout=120)
