"""The compose ``tune`` profile, for real: a short search in the container writes its files on the host.

Only the image and the one-shot ``tune`` service: none of the stack's servers
start (the service starts its candidates itself). Its own project name and
results directory; ``down`` and removal of the directory in a ``finally``. Skips
only when no engine answers and ``REQUIRE_DOCKER`` is unset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import RECOMMENDATION_KEYS, ROOT, engine_answers

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]

PROJECT = "wsgilab-tune-test"
COMPOSE = ["docker", "compose", "-p", PROJECT, "-f", str(ROOT / "docker-compose.yml")]


def compose(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMPOSE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_tune_profile_writes_a_recommendation_into_the_mounted_dir() -> None:
    if not engine_answers():
        if os.environ.get("REQUIRE_DOCKER", "") not in ("", "0"):
            pytest.fail("REQUIRE_DOCKER is set but no Docker engine answers `docker info`")
        pytest.skip("no Docker engine (../shared/docker-sandbox/start gives one)")
    results = Path(tempfile.mkdtemp(prefix="wsgilab-tune-results-"))
    if os.geteuid() == 0:  # the files must belong to the directory's owner, not the image's uid
        os.chown(results, 12345, 12345)
    owner = results.stat().st_uid
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "LAB_", "TUNE_"))}
    env |= {"LAB_RESULTS_DIR": str(results), "TUNE_MEMORY": "1GiB"}
    try:
        built = compose(
            env, "build", "lab-single", timeout=900
        )  # the one image; tune has no build of its own
        assert built.returncode == 0, built.stderr[-3000:]
        started = time.monotonic()
        run = compose(
            env, "--profile", "tune", "run", "--rm", "tune",
            "--servers", "gunicorn-gthread", "--path", "/sleep?s=0.01", "--slo", "p95=500ms",
            "--minutes", "1", "--step-seconds", "1", "--seed", "7",
            timeout=400,
        )  # fmt: skip
        print(f"\ncompose run tune: {time.monotonic() - started:.1f} s")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        compose(env, "--profile", "tune", "down", "-v", "--remove-orphans", timeout=180)
        # A rebuild after a code change leaves the previous image untagged: drop this project's.
        label = f"label=com.docker.compose.project={PROJECT}"
        subprocess.run(
            ["docker", "image", "prune", "-f", "--filter", label], capture_output=True, timeout=120
        )
    try:
        (out,) = [d for d in results.iterdir() if d.is_dir()]
        assert out.name.startswith("tune-")
        assert str(out) in run.stdout and "/srv/wsgi-lab" not in run.stdout  # the host's path
        # The budget came from the service's environment: TUNE_CPUS (LAB_CPUS's default 1), TUNE_MEMORY.
        assert "from TUNE_CPUS" in run.stdout and "from TUNE_MEMORY" in run.stdout
        doc = json.loads((out / "recommendation.json").read_text())
        assert doc["budget"]["cpus"] == 1
        for key in RECOMMENDATION_KEYS:
            assert key in doc["baseline"], key
        assert doc["baseline"]["workers"] == 3  # (2 x 1) + 1
        assert {c["target"] for c in doc["candidates"]} == {"gunicorn-gthread", "gunicorn-sync"}
        for name in (
            "recommendation.md",
            "recommendation.html",
            "recommendation.json",
            "env.json",
            "rerun.sh",
        ):
            assert (out / name).stat().st_size > 0, name
            assert (out / name).stat().st_uid == owner, name
    finally:
        shutil.rmtree(results, ignore_errors=True)
