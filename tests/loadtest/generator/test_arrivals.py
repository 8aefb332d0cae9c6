"""tune's open-loop locustfile under real locust: it records who served each step without the scenarios."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from loadtest.registry.scenarios import SCENARIO_CLASSES
from loadtest.registry.steps import STEP_MARKER
from tests.support import ROOT, free_port, lab_server

pytestmark = pytest.mark.slow
ARRIVALS = str(ROOT / "loadtest" / "generator" / "arrivals.py")


def locust_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LAB_HOSTS"))}
    return {**env, "PYTHONPATH": str(ROOT)}


def test_arrivals_record_every_step_with_the_identity_recorder(tmp_path):
    port = free_port()
    identity = tmp_path / "run.identity.jsonl"
    with lab_server("threaded", port, env={"LAB_SERVER_MODEL": "lab-threaded"}) as server:
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", ARRIVALS, "--headless", "--only-summary",
             "--users", "1", "--spawn-rate", "1", "--run-time", "20s",
             "--host", f"http://127.0.0.1:{port}", "--csv", str(tmp_path / "run"),
             "--identity-file", str(identity), "--tune-ladder", "40:1,80:1", "--tune-paths", "/:1",
             "ArrivalUser"],
            cwd=tmp_path, env=locust_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        server_pid = str(server.pid)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in identity.read_text().splitlines()]
    markers = [r["name"] for r in records if r["name"].endswith(STEP_MARKER)]
    assert markers == [f"s0 {STEP_MARKER}", f"s1 {STEP_MARKER}"]
    served = [r for r in records if not r["name"].endswith(STEP_MARKER)]
    assert {r["name"] for r in served} == {"s0 /", "s1 /"}
    assert {r["pid"] for r in served} == {server_pid} and all(r["ok"] for r in served)
    # 40 and 80 req/s for a second each: Poisson arrivals, so about 120 in all
    assert 60 <= len(served) <= 200
    with (tmp_path / "run_stats.csv").open() as fh:
        total = next(int(r["Request Count"]) for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    # every request locust counted reached the file (slack for one finishing after the final flush)
    assert total - 2 <= len(records) <= total + 2


def listed(locustfile: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", locustfile, "--list", *flags],
        cwd=ROOT, env=locust_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_arrivals_loads_no_scenario_and_accepts_no_scenario_option():
    """arrivals.py imports what it uses: the closed-loop users and their flags are not in its run."""
    result = listed(ARRIVALS, "--identity-file", "x.jsonl", "--tune-ladder", "1:1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["Available", "Users:", "ArrivalUser"]
    for flag in ("--sleep-s", "--target"):
        refused = listed(ARRIVALS, flag, "1")
        assert refused.returncode == 2 and f"unrecognized arguments: {flag}" in refused.stderr


def test_the_locustfile_offers_every_scenario_and_its_options():
    result = listed(
        str(ROOT / "loadtest" / "generator" / "locustfile.py"), "--sleep-s", "1", "--identity-file", "x"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    users = result.stdout.split()[2:]
    assert users == sorted({c for names in SCENARIO_CLASSES.values() for c in names.split()})
