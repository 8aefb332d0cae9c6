"""The image a container backend runs: the project's own, built from its Dockerfile, or one the user names.

- ``project_image``: ``wsgi-lab:latest`` (the tag docker-compose.yml gives its one
  image), built when missing or when its build inputs changed. The inputs are
  fingerprinted -- the Dockerfile, every file the build context sends (the
  ``.dockerignore`` allow-list) and the base image -- and the fingerprint is a label
  on the image, so a current image is reused at once and an edit to the server's
  code rebuilds only the layers after the dependencies.
- ``user_image``: an image the user built on ours (``FROM wsgi-lab:latest``, their
  app and its dependencies added); it must exist on the engine: nothing is pulled.

What this module does not know: what runs in the image.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
from docker.utils.build import exclude_paths

from loadtest.registry.paths import PROJECT_ROOT
from loadtest.registry.targets import COMPOSE_IMAGE
from loadtest.run.engine import EngineError, first_line

FINGERPRINT_LABEL = "wsgi-lab.inputs"
BASE_IMAGE_ENV, DEFAULT_BASE_IMAGE = "LAB_BASE_IMAGE", "python:3.12-slim"  # as docker-compose.yml


def context_files(root: Path = PROJECT_ROOT) -> list[str]:
    """The files ``docker build`` sends from ``root``, by the same ``.dockerignore`` rules."""
    ignore = root / ".dockerignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    return sorted(p for p in exclude_paths(str(root), patterns) if (root / p).is_file())


def fingerprint(root: Path, base_image_id: str) -> str:
    digest = hashlib.sha256(base_image_id.encode())
    for name in dict.fromkeys(["Dockerfile", *context_files(root)]):
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def base_image() -> str:
    return os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE


def project_image(client: docker.DockerClient, say: Callable[[str], None], root: Path = PROJECT_ROOT) -> str:
    """``COMPOSE_IMAGE``, built from ``root`` unless the engine holds one with the current inputs' hash."""
    base = base_image()
    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound:
        raise EngineError(f"the base image {base} is not on the engine (nothing is pulled)") from None
    wanted = fingerprint(root, base_id)
    try:
        current = client.images.get(COMPOSE_IMAGE)
    except docker.errors.ImageNotFound:
        current = None
    if current is not None and current.labels.get(FINGERPRINT_LABEL) == wanted:
        return COMPOSE_IMAGE
    say(
        f"building {COMPOSE_IMAGE} from {root / 'Dockerfile'} "
        "(its inputs changed or it is missing; minutes at first)"
    )
    try:
        client.images.build(
            path=str(root),
            tag=COMPOSE_IMAGE,
            buildargs={"BASE_IMAGE": base},
            labels={FINGERPRINT_LABEL: wanted},
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        lines = [str(chunk.get("stream", "")).strip() for chunk in exc.build_log if chunk.get("stream")]
        raise EngineError(f"building {COMPOSE_IMAGE} failed: {lines[-1] if lines else exc.msg}") from None
    except docker.errors.DockerException as exc:
        raise EngineError(f"building {COMPOSE_IMAGE} failed: {first_line(exc)}") from None
    with contextlib.suppress(docker.errors.APIError):  # earlier builds of ours, now untagged
        client.images.prune(filters={"dangling": True, "label": FINGERPRINT_LABEL})
    return COMPOSE_IMAGE


def user_image(client: docker.DockerClient, name: str) -> str:
    """``name`` if the engine holds it; EngineError otherwise (it is never pulled)."""
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        raise EngineError(
            f"no image {name!r} on the engine: build it (FROM {COMPOSE_IMAGE}) first; nothing is pulled"
        ) from None
    except docker.errors.DockerException as exc:
        raise EngineError(f"image {name!r}: {first_line(exc)}") from None
    return name
