"""A team's own image for the container backend: what it lacks is added, and said.

Policy, stated once:

- Any image with a ``python`` and the team's app will do (``--image``). The identity
  wrapper is never baked in: the staged shim (``shim.py``) is mounted read-only.
- The servers the candidates need are asked of the image's python (``find_spec`` in a
  throw-away container); those it lacks are installed with its own ``python -m pip`` in a
  derived image, ``wsgi-lab-derived:<hash>`` (the hash of the base image's id and the
  pinned distributions, so a second run reuses it). An image without pip keeps what it
  has: the candidates it cannot run are skipped with the line that would add them.
- ``check_readable``: a container running as this process's uid lists the mounted app
  directory before anything is measured; one that cannot is a one-line error naming the
  directory, its mode and owner.

What this module does not know: what is measured in the image.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from loadtest.registry import targets
from loadtest.run import engine
from loadtest.run.team import needs, pinned

DERIVED = "wsgi-lab-derived"
FINGERPRINT_LABEL = "wsgi-lab.derived-from"
PROBE_MOUNT = "/srv/app"


@dataclass
class Prepared:
    image: str  # what the candidates run from: the team's image or one derived from it
    added: list[str] = field(default_factory=list)  # what was added, for the page
    skipped: dict[str, str] = field(default_factory=dict)  # target -> the line that would add its server


def probe(client: docker.DockerClient, image: str, argv: list[str], **kw) -> str:
    """Run ``argv`` in a throw-away container of ``image``: its stdout, or EngineError with its last line."""
    try:
        out = client.containers.run(
            image, argv, remove=True, stdout=True, stderr=True, labels={engine.LABEL: "1"}, **kw
        )
    except docker.errors.ContainerError as exc:
        text = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr)
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        raise engine.EngineError(lines[-1] if lines else f"exit {exc.exit_status}") from None
    except docker.errors.DockerException as exc:
        raise engine.EngineError(engine.first_line(exc)) from None
    return out.decode(errors="replace")


def check_readable(client: docker.DockerClient, image: str, app_dir: Path, user: str) -> None:
    """EngineError (one line: the directory, its mode, its owner) if ``user`` cannot read the mounted app."""
    code = f"import os; os.listdir({PROBE_MOUNT!r})"
    try:
        probe(
            client,
            image,
            ["python", "-S", "-c", code],
            user=user,
            volumes={str(app_dir): {"bind": PROBE_MOUNT, "mode": "ro"}},
        )
    except engine.EngineError as exc:
        info = app_dir.stat()
        raise engine.EngineError(
            f"the container (uid {user.split(':')[0]}) cannot read {app_dir} "
            f"(mode {stat.S_IMODE(info.st_mode):04o}, owner uid {info.st_uid}): {exc}"
        ) from None


def present(client: docker.DockerClient, image: str, modules: Iterable[str]) -> set[str]:
    code = (
        "import importlib.util as u, json, sys;print(json.dumps([m for m in sys.argv[1:] if u.find_spec(m)]))"
    )
    try:
        return set(
            json.loads(probe(client, image, ["python", "-c", code, *modules]).strip().splitlines()[-1])
        )
    except engine.EngineError as exc:
        raise engine.EngineError(f"--image {image}: its python did not answer ({exc})") from None


def prepare(
    client: docker.DockerClient, image: str, names: Iterable[str], say: Callable[[str], None]
) -> Prepared:
    """The image the candidates ``names`` run from, with every server they need (or their skip lines)."""
    chosen = [targets.TARGETS[n] for n in names]
    wanted = {pair for t in chosen for pair in needs(t)}
    have = present(client, image, sorted(m for m, _ in wanted))
    lacking = sorted({pinned(dist) for module, dist in wanted if module not in have})
    if not lacking:
        return Prepared(image)
    try:
        derived = derive(client, image, lacking, say)
    except engine.EngineError as exc:
        line = f"RUN python -m pip install {' '.join(lacking)} in the image's Dockerfile"
        say(f"could not add the servers to {image} ({exc}); the candidates that need them are skipped")
        skipped = {t.name: line for t in chosen if any(m not in have for m, _ in needs(t))}
        return Prepared(image, skipped=skipped)
    return Prepared(derived, added=[f"{' '.join(lacking)} installed in {derived} (FROM {image})"])


def derive(client: docker.DockerClient, image: str, dists: list[str], say: Callable[[str], None]) -> str:
    base_id = client.images.get(image).id
    digest = hashlib.sha256("\0".join([base_id, *dists]).encode()).hexdigest()[:12]
    tag = f"{DERIVED}:{digest}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    say(f"building {tag}: {image} lacks {', '.join(dists)} (installed with its own pip)")
    dockerfile = (
        f"FROM {image}\nUSER root\n"
        f"RUN python -m pip install --no-cache-dir --disable-pip-version-check {' '.join(dists)}\n"
    )
    try:
        client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()),
            tag=tag,
            labels={FINGERPRINT_LABEL: image, engine.LABEL: "1"},
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        lines = [str(c.get("stream", "")).strip() for c in exc.build_log if str(c.get("stream", "")).strip()]
        raise engine.EngineError(lines[-1] if lines else exc.msg) from None
    except docker.errors.DockerException as exc:
        raise engine.EngineError(engine.first_line(exc)) from None
    return tag
