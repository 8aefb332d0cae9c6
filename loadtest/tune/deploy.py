"""What a team applies: ``deploy/compose.yml`` and ``deploy/kubernetes.yaml`` for the recommended shape.

Built as data and written by PyYAML (no text templates), from the record
``report.document`` made, so the files say what the page says:

- the command is the recommendation's, bound on ``0.0.0.0:8000``;
- CPU: the budget's cores (compose ``cpus``; Kubernetes requests = limits);
- memory: compose ``mem_limit`` and the Kubernetes limit are the budget; the
  Kubernetes request is the measured peak PSS plus ``HEADROOM`` (never above
  the limit);
- health: ``python -c`` with the standard library (the image has no curl), on
  the app's ``/health`` for the demo app, else the workload's first path, else a
  TCP connect (a locustfile workload names no path);
- shutdown: the grace period is the server's own graceful timeout (from its
  command, else the server's documented default) plus ``STOP_MARGIN_S``, so the
  orchestrator's SIGKILL comes after the server has finished its requests.

What this module does not know: how the shape was chosen or measured.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import yaml

from loadtest.registry import targets
from loadtest.tune.candidates import DEPLOY_BIND

NAME = "wsgi-app"
HEADROOM = 0.25  # Kubernetes memory request = measured peak x (1 + HEADROOM)
STOP_MARGIN_S = 5
GRACE_FLAGS = ("--graceful-timeout", "--workers-kill-timeout")
# Graceful timeouts when the command sets none: gunicorn's and our server's default 30 s,
# uWSGI's worker-reload-mercy 60 s; waitress and granian name none (Kubernetes' own 30 s).
DEFAULT_GRACE_S = {"gunicorn": 30, "lab": 30, "uwsgi": 60}
KUBERNETES_DEFAULT_GRACE_S = 30
HEALTH_PATH = "/health"  # the demo app's
PROBE = {"periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}


def port() -> int:
    return int(DEPLOY_BIND.rsplit(":", 1)[1])


def grace_seconds(command: list[str], server: str) -> int:
    """The server's graceful timeout: from its command, else its default."""
    for i, arg in enumerate(command):
        name, eq, value = arg.partition("=")
        if name in GRACE_FLAGS:
            text = value if eq else (command[i + 1] if i + 1 < len(command) else "")
            try:
                return math.ceil(float(text))
            except ValueError:
                break
    return DEFAULT_GRACE_S.get(server, KUBERNETES_DEFAULT_GRACE_S)


def probe_path(result: dict) -> str | None:
    """The path the health checks ask for; None: a TCP connect."""
    if result["app"] == targets.OUR_APP:
        return HEALTH_PATH
    paths = result.get("paths") or []
    return paths[0]["path"] if paths else None


def check_code(path: str | None) -> str:
    if path is None:
        return f"import socket; socket.create_connection(('127.0.0.1', {port()}), 2).close()"
    return f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port()}{path}', timeout=2)"


def memory(result: dict) -> tuple[int, int]:
    """(request, limit) in MiB: the measured peak plus headroom, and the budget."""
    limit = math.floor(result["budget"]["memory_mb"])
    peak = result["recommended"].get("memory_mb")
    request = math.ceil(peak * (1 + HEADROOM)) if peak else limit
    return min(request, limit), limit


def compose(result: dict, image: str = targets.COMPOSE_IMAGE) -> dict:
    rec, cpus = result["recommended"], result["budget"]["cpus"]
    command = shlex.split(rec["command"])
    _, limit = memory(result)
    return {
        "name": NAME,
        "services": {
            NAME: {
                "image": image,
                "command": command,
                "ports": [f"{port()}:{port()}"],
                "cpus": float(cpus),
                "mem_limit": f"{limit}m",
                "stop_grace_period": f"{grace_seconds(command, rec['server']) + STOP_MARGIN_S}s",
                "healthcheck": {
                    "test": ["CMD", "python", "-c", check_code(probe_path(result))],
                    "interval": f"{PROBE['periodSeconds']}s",
                    "timeout": f"{PROBE['timeoutSeconds']}s",
                    "retries": PROBE["failureThreshold"],
                    "start_period": "10s",
                },
                "restart": "unless-stopped",
            }
        },
    }


def readiness(path: str | None) -> dict:
    check = {"httpGet": {"path": path, "port": port()}} if path else {"tcpSocket": {"port": port()}}
    return {**check, "initialDelaySeconds": 2, **PROBE}


def annotations(result: dict) -> dict[str, str]:
    rec = result["recommended"]
    floor = "at least " if rec.get("rate_at_slo_lower_bound") else ""
    request, limit = memory(result)
    return {
        "wsgi-lab/rate-at-slo": f"{floor}{rec['rate_at_slo']:.0f} req/s",
        "wsgi-lab/slo": ", ".join(f"{k.removesuffix('_ms')} <= {v:g} ms" for k, v in result["slo"].items()),
        "wsgi-lab/memory": f"peak {rec.get('memory_mb') or 0:.0f} MiB measured; request {request} MiB "
        f"(+{HEADROOM:.0%}), limit {limit} MiB (the budget)",
    }


def kubernetes(result: dict, image: str = targets.COMPOSE_IMAGE) -> list[dict]:
    rec, cpus = result["recommended"], result["budget"]["cpus"]
    command = shlex.split(rec["command"])
    request, limit = memory(result)
    labels = {"app": NAME}
    container = {
        "name": NAME,
        "image": image,
        "command": command,
        "ports": [{"containerPort": port(), "name": "http"}],
        "resources": {
            "requests": {"cpu": str(cpus), "memory": f"{request}Mi"},
            "limits": {"cpu": str(cpus), "memory": f"{limit}Mi"},
        },
        "readinessProbe": readiness(probe_path(result)),
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "labels": labels, "annotations": annotations(result)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": grace_seconds(command, rec["server"]) + STOP_MARGIN_S,
                    "containers": [container],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return [deployment, service]


class Dumper(yaml.SafeDumper):
    """YAML without anchors: a label set used twice is written twice, as a person would."""

    def ignore_aliases(self, data) -> bool:
        return True


def write(out: Path, result: dict, image: str = targets.COMPOSE_IMAGE) -> list[Path]:
    """``deploy/compose.yml`` and ``deploy/kubernetes.yaml`` beside the record (none without a
    recommendation)."""
    if result.get("recommended") is None:
        return []
    folder = out / "deploy"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        folder / "compose.yml": yaml.dump(compose(result, image), Dumper=Dumper, sort_keys=False),
        folder / "kubernetes.yaml": yaml.dump_all(kubernetes(result, image), Dumper=Dumper, sort_keys=False),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
