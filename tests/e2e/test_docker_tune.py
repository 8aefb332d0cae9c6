"""make tune and Docker, for real: the compose ``tune`` profile, and ``--runtime docker`` from the host.

The compose profile: only the image and the one-shot ``tune`` service (it starts
its candidates itself), its own project name and results directory; ``down`` and
removal of the directory in a ``finally``. ``--runtime docker``: every candidate in
its own container under a real CPU quota and memory limit, the load generator on
the host; the run removes its containers itself, and the tests check it did.
Skips only when no engine answers and ``REQUIRE_DOCKER`` is unset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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


def need_engine() -> None:
    if not engine_answers():
        if os.environ.get("REQUIRE_DOCKER", "") not in ("", "0"):
            pytest.fail("REQUIRE_DOCKER is set but no Docker engine answers `docker info`")
        pytest.skip("no Docker engine (../shared/docker-sandbox/start gives one)")


def test_tune_profile_writes_a_recommendation_into_the_mounted_dir() -> None:
    need_engine()
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


# --- --runtime docker ---------------------------------------------------------------------

BALLAST_APP = '''"""60 MiB per process, touched so it is resident: 3 workers fit in 280 MiB, 4 do not."""

import time

BALLAST = bytearray(60 * 1024 * 1024)
BALLAST[::4096] = b"\\1" * len(range(0, len(BALLAST), 4096))


def app(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def tune_in_docker(cwd: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m loadtest.tune --runtime docker ARGS`` from ``cwd`` (this tree's code on the path)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("TUNE_")}
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "loadtest.tune", "--runtime", "docker", "--cpus", "1.5", "--step-seconds", "1",
         "--seed", "7", "--out", str(out), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    print(f"\ntune --runtime docker: {time.monotonic() - started:.1f} s")
    return run


def labelled_containers() -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=wsgi-lab.tune=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.split()


def test_runtime_docker_runs_candidates_under_a_quota_and_a_limit(tmp_path: Path) -> None:
    """The demo I/O workload, 1.5 CPUs and 400 MiB: each measured round has the quota and limit read back."""
    need_engine()
    out = tmp_path / "run"
    run = tune_in_docker(ROOT, out, "--memory", "400MiB", "--servers", "gunicorn-gthread", "--minutes", "1.5")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "runtime docker: each candidate in its own container" in run.stdout
    doc = json.loads((out / "recommendation.json").read_text())
    assert doc["budget"]["cpus"] == 1.5 and doc["budget"]["runtime"] == "docker"
    assert doc["baseline"]["workers"] == 4  # (2 x 1.5) + 1
    # the baseline is always measured, and what confined it travels with it, as with every candidate
    assert (doc["baseline"]["runtime"], doc["baseline"]["cpu_quota"]) == ("docker", 1.5)
    measured = [c for c in doc["candidates"] if c.get("measurements")]
    assert measured, doc["candidates"]
    for c in measured:
        assert (c["runtime"], c["cpu_quota"], c["memory_limit_mb"]) == ("docker", 1.5, 400.0), c["key"]
        assert c["periods"] > 0 and 0 <= c["throttled_periods"] <= c["periods"]
        assert c["oom_kills"] == 0
        for m in c["measurements"]:
            assert (m["box"]["cpu_quota_us"], m["box"]["cpu_period_us"]) == (150_000, 100_000)
            assert len(m["box"]["throttling_by_step"]) >= len(m["steps"])
    assert (
        "under a CPU quota of 1.5 core(s) and a 400 MiB memory limit"
        in (out / "recommendation.md").read_text()
    )
    assert labelled_containers() == []  # the run removed its containers


def test_runtime_docker_reports_a_shape_the_oom_killer_killed(tmp_path: Path) -> None:
    """An app of 60 MiB a worker in 280 MiB: the 4-worker baseline is OOM-killed, and fails so."""
    need_engine()
    app_dir = tmp_path / "myapp"
    app_dir.mkdir()
    (app_dir / "ballast.py").write_text(BALLAST_APP)
    app_dir.chmod(0o755)  # mounted into the container, read by the image's own user
    (app_dir / "ballast.py").chmod(0o644)
    out = tmp_path / "run"
    run = tune_in_docker(
        app_dir, out, "--app", "ballast:app", "--path", "/", "--memory", "280MiB",
        "--servers", "gunicorn-sync", "--minutes", "1.5",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads((out / "recommendation.json").read_text())
    base = next(c for c in doc["candidates"] if c["baseline"])
    assert base["workers"] == 4
    assert base["status"] == "failed" and "killed by the OOM killer" in base["why"], base
    assert base["oom_kills"] >= 1 and base["memory_limit_mb"] == 280.0
    page = (out / "recommendation.md").read_text()
    assert "Killed by the OOM killer, so failed: gunicorn-sync w4 t1" in page
    if doc["recommended"] is None:
        assert "OOM killer" in doc["binding"]
    assert labelled_containers() == []
