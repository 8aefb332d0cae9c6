"""What a team applies: ``deploy/compose.yml`` and ``deploy/kubernetes.yaml`` for the recommended shape.

Built as data and written by PyYAML (no text templates), from the record
``report.document`` made, so the files say what the page says.  Policy choices:

- the command is the recommendation's production command (``candidates.production``:
  the server's own default timeouts), bound on ``0.0.0.0:8000``;
- replicas: the fleet plan's (``fleet.py``), else ``DEFAULT_REPLICAS``; an
  ``autoscaling/v2`` autoscaler from the plan up to its ceiling on the plan's CPU
  share; a disruption budget of one pod at a time (never a budget that blocks a drain);
- CPU: the budget's cores (requests = limits); memory: the limit is the budget, the
  Kubernetes request the measured peak PSS plus ``HEADROOM``;
- probes: ``python -c`` with the standard library in compose (the image has no curl),
  HTTP GET in Kubernetes, on ``/health`` for the demo app, else the workload's first
  path, else a TCP connect; the startup probe covers ``START_COVER`` x the measured
  start; liveness fails only after ``LIVENESS_FAILURES`` misses (readiness after 3);
- shutdown: a ``PRESTOP_S`` pause (endpoints are removed asynchronously: requests
  still arrive for a moment), then SIGTERM; the grace period is the pause plus the
  server's graceful timeout (its documented default unless the command sets one)
  plus ``STOP_MARGIN_S``;
- Pod Security Standards *restricted*: non-root with the image's uid, no privilege
  escalation, every capability dropped, seccomp RuntimeDefault, a read-only root
  filesystem with an emptyDir on ``/tmp``, no service-account token;
- environment: by reference only (compose ``env_file``, a ConfigMap the manifest names),
  never values.

What this module does not know: how the shape was chosen or measured.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from loadtest.registry import targets
from loadtest.tune.candidates import DEPLOY_BIND, production

NAME = "wsgi-app"
DEFAULT_NAMESPACE = NAME  # never "default": a platform's own namespaces are not shared
IMAGE_UID = 10001  # the project's image (Dockerfile: useradd --uid 10001)
HEADROOM = 0.25  # Kubernetes memory request = measured peak x (1 + HEADROOM)
STOP_MARGIN_S = 5
PRESTOP_S = 5
GRACE_FLAGS = ("--graceful-timeout", "--workers-kill-timeout")
# Graceful timeouts when the command sets none: gunicorn's and our server's default 30 s,
# uWSGI's worker-reload-mercy 60 s; waitress and granian name none (Kubernetes' own 30 s).
DEFAULT_GRACE_S = {"gunicorn": 30, "lab": 30, "uwsgi": 60}
KUBERNETES_DEFAULT_GRACE_S = 30
HEALTH_PATH = "/health"  # the demo app's
PROBE = {"periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}
LIVENESS_FAILURES = 6  # a busy pod is taken out of the Service long before it is restarted
STARTUP_PERIOD_S = 2
START_COVER = 3  # the startup probe allows this many times the measured start
MIN_START_S = 10  # ... and never less (a cold node, an image still being unpacked)
DEFAULT_REPLICAS = 2  # without a plan: one pod may be drained while the other serves
TMP = "/tmp"
ENV_CONFIGMAP = f"{NAME}-env"
# The checkov Kubernetes checks the files fail, by design (docs/tune.md says why, from here).
CHECKOV_EXCEPTIONS = {
    "CKV_K8S_43": "an image digest is the team's to pin: tune knows the image by name, not by the digest "
    "their registry gives the build they ship",
    "CKV2_K8S_6": "a NetworkPolicy depends on the cluster: which namespaces and ingress controller may "
    "reach the pods, and whether the network plugin enforces policies at all",
}
# ... and with the project's demo image (no --image), which is tagged latest: it must be the team's.
CHECKOV_DEMO_IMAGE = {"CKV_K8S_14": "the demo image wsgi-lab:latest stands in for the team's image and tag"}


@dataclass(frozen=True)
class Options:
    """What the files need besides the record: where and as whom they run."""

    image: str = targets.COMPOSE_IMAGE
    uid: int = IMAGE_UID
    namespace: str = DEFAULT_NAMESPACE
    env_file: str | None = None  # compose's env_file; in Kubernetes, the ConfigMap made from it
    env_names: tuple[str, ...] = ()  # variables tune ran with (--env): named, their values never written

    @property
    def env_reference(self) -> str | None:
        """The env file the files refer to (the team's, else ``<name>.env``); None: no environment."""
        return self.env_file or (f"{NAME}.env" if self.env_names else None)

    @property
    def ours(self) -> bool:
        return self.image == targets.COMPOSE_IMAGE


def port() -> int:
    return int(DEPLOY_BIND.rsplit(":", 1)[1])


def command(result: dict) -> list[str]:
    rec = result["recommended"]
    return production(shlex.split(rec["command"]), rec["server"])


def grace_seconds(argv: list[str], server: str) -> int:
    """The server's graceful timeout: from its command, else its default."""
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in GRACE_FLAGS:
            text = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            try:
                return math.ceil(float(text))
            except ValueError:
                break
    return DEFAULT_GRACE_S.get(server, KUBERNETES_DEFAULT_GRACE_S)


def stop_seconds(result: dict) -> int:
    """Pause + the server's graceful timeout + margin: SIGKILL only after the server has finished."""
    return PRESTOP_S + grace_seconds(command(result), result["recommended"]["server"]) + STOP_MARGIN_S


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


def start_seconds(result: dict) -> float:
    """The longest start tune measured for the recommended shape (None measured: ``MIN_START_S``)."""
    key = result["recommended"].get("key")
    starts = [
        m["start_s"]
        for c in result.get("candidates") or []
        if c.get("key") == key
        for m in c.get("measurements") or []
        if m.get("start_s") is not None
    ]
    return max(starts, default=0.0)


def replicas(result: dict) -> int:
    plan = result.get("fleet")
    return plan["replicas"] if plan else DEFAULT_REPLICAS


def labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": NAME}


# --------------------------------------------------------------------------- compose


def compose(result: dict, opts: Options = Options()) -> dict:
    argv, cpus = command(result), result["budget"]["cpus"]
    _, limit = memory(result)
    service: dict = {
        "image": opts.image,
        "command": argv,
        "user": f"{opts.uid}:{opts.uid}",
        "read_only": True,
        "tmpfs": [TMP],
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "ports": [str(port())],  # an ephemeral host port per replica
        "cpus": float(cpus),
        "mem_limit": f"{limit}m",
        "stop_grace_period": f"{grace_seconds(argv, result['recommended']['server']) + STOP_MARGIN_S}s",
        "healthcheck": {
            "test": ["CMD", "python", "-c", check_code(probe_path(result))],
            "interval": f"{PROBE['periodSeconds']}s",
            "timeout": f"{PROBE['timeoutSeconds']}s",
            "retries": PROBE["failureThreshold"],
            "start_period": f"{max(MIN_START_S, math.ceil(START_COVER * start_seconds(result)))}s",
        },
        "restart": "unless-stopped",
        "deploy": {"replicas": replicas(result)},
    }
    if opts.env_reference:
        service["env_file"] = [opts.env_reference]
    return {"name": NAME, "services": {NAME: service}}


# --------------------------------------------------------------------------- Kubernetes


def check(path: str | None) -> dict:
    return {"httpGet": {"path": path, "port": "http"}} if path else {"tcpSocket": {"port": "http"}}


def probes(result: dict) -> dict:
    path = probe_path(result)
    start = max(MIN_START_S, START_COVER * start_seconds(result))
    return {
        "startupProbe": {
            **check(path),
            "periodSeconds": STARTUP_PERIOD_S,
            "timeoutSeconds": PROBE["timeoutSeconds"],
            "failureThreshold": math.ceil(start / STARTUP_PERIOD_S),
        },
        "readinessProbe": {**check(path), **PROBE},
        "livenessProbe": {**check(path), **PROBE, "failureThreshold": LIVENESS_FAILURES},
    }


def annotations(result: dict, opts: Options) -> dict[str, str]:
    rec = result["recommended"]
    floor = "at least " if rec.get("rate_at_slo_lower_bound") else ""
    request, limit = memory(result)
    out = {
        "wsgi-lab/rate-at-slo": f"{floor}{rec['rate_at_slo']:.0f} req/s per replica",
        "wsgi-lab/slo": ", ".join(f"{k.removesuffix('_ms')} <= {v:g} ms" for k, v in result["slo"].items()),
        "wsgi-lab/memory": f"peak {rec.get('memory_mb') or 0:.0f} MiB measured; request {request} MiB "
        f"(+{HEADROOM:.0%}), limit {limit} MiB (the budget)",
    }
    if result.get("fleet"):
        out["wsgi-lab/plan"] = result["fleet"]["headline"]
    if opts.ours:
        out["wsgi-lab/image"] = (
            f"{opts.image} is the project's demo image: replace it with your team's image "
            f"(running as uid {opts.uid}), pinned by digest"
        )
    return out


def security(uid: int) -> tuple[dict, dict]:
    """(pod, container) securityContext per the Pod Security Standards' restricted profile."""
    seccomp = {"type": "RuntimeDefault"}
    pod = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": seccomp,
    }
    container = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": seccomp,
    }
    return pod, container


def container(result: dict, opts: Options) -> dict:
    cpus = result["budget"]["cpus"]
    request, limit = memory(result)
    _, context = security(opts.uid)
    out = {
        "name": NAME,
        "image": opts.image,
        "imagePullPolicy": "Always",
        "command": command(result),
        "ports": [{"containerPort": port(), "name": "http"}],
        "resources": {
            "requests": {"cpu": str(cpus), "memory": f"{request}Mi"},
            "limits": {"cpu": str(cpus), "memory": f"{limit}Mi"},
        },
        **probes(result),
        "lifecycle": {
            "preStop": {"exec": {"command": ["python", "-c", f"import time; time.sleep({PRESTOP_S})"]}},
        },
        "securityContext": context,
        "volumeMounts": [{"name": "tmp", "mountPath": TMP}],
    }
    if opts.env_reference:
        out["envFrom"] = [{"configMapRef": {"name": ENV_CONFIGMAP}}]
    return out


def metadata(opts: Options, **more) -> dict:
    return {"name": NAME, "namespace": opts.namespace, "labels": labels(), **more}


def deployment(result: dict, opts: Options) -> dict:
    pod, _ = security(opts.uid)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(opts, annotations=annotations(result, opts)),
        "spec": {
            "replicas": replicas(result),
            "selector": {"matchLabels": labels()},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod,
                    "terminationGracePeriodSeconds": stop_seconds(result),
                    "containers": [container(result, opts)],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def autoscaler(result: dict, opts: Options) -> dict | None:
    """Scale from the plan to its ceiling on the CPU share the plan's rate uses; None without a plan."""
    plan = result.get("fleet")
    if not plan or plan.get("cpu_target_percent") is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(opts),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicas": plan["replicas"],
            "maxReplicas": max(plan["max_replicas"], plan["replicas"]),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": plan["cpu_target_percent"]},
                    },
                }
            ],
        },
    }


def disruption_budget(opts: Options) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(opts),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels()}},
    }


def service(opts: Options) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(opts),
        "spec": {"selector": labels(), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def kubernetes(result: dict, opts: Options = Options()) -> list[dict]:
    hpa = autoscaler(result, opts)
    return [
        deployment(result, opts),
        service(opts),
        disruption_budget(opts),
        *([hpa] if hpa else []),
    ]


class Dumper(yaml.SafeDumper):
    """YAML without anchors: a label set used twice is written twice, as a person would."""

    def ignore_aliases(self, data) -> bool:
        return True


def header(result: dict, opts: Options) -> str:
    lines = [f"wsgi-lab tune: {shlex.join(command(result))}"]
    if result.get("fleet"):
        lines.append(result["fleet"]["headline"])
    if opts.ours:
        lines.append(f"The image {opts.image} is the project's demo: use your team's, pinned by digest.")
    if opts.env_reference:
        names = f" ({', '.join(opts.env_names)})" if opts.env_names else ""
        lines.append(
            f"Environment{names}: the ConfigMap {ENV_CONFIGMAP}, made with kubectl create configmap "
            f"{ENV_CONFIGMAP} --from-env-file={opts.env_reference}"
        )
    return "".join(f"# {line}\n" for line in lines)


def write(out: Path, result: dict, opts: Options = Options()) -> list[Path]:
    """``deploy/compose.yml`` and ``deploy/kubernetes.yaml`` beside the record (none without a
    recommendation)."""
    if result.get("recommended") is None:
        return []
    folder = out / "deploy"
    folder.mkdir(parents=True, exist_ok=True)
    head = header(result, opts)
    files = {
        folder / "compose.yml": head + yaml.dump(compose(result, opts), Dumper=Dumper, sort_keys=False),
        folder / "kubernetes.yaml": head
        + yaml.dump_all(kubernetes(result, opts), Dumper=Dumper, sort_keys=False),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
