"""Rounds, sweeps and what makes a run repeatable: real servers, real locust, a few seconds each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.measure.stats import METRICS
from loadtest.run import environment
from tests.support import ROOT, run_compare

pytestmark = pytest.mark.slow
PER_ROUND_KEYS = (
    "round",
    "position",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "avg_ms",
    "server_cpu_cores",
    "server_mem_mb",
    "generator_cpu",
    "generator_processes",
    "machine_cpu",
    "max_in_flight",
    "requests",
    "failures",
    "errors",
    "load_before",
    "load_after",
    "window_s",
    "error",
)


def summary_rows(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())["rows"]


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("rounds") / "run"
    args = ("--targets", "lab-threaded,gunicorn-sync", "--scenario", "io", "--users", "4")
    result = run_compare(
        *args, "--sleep-s", "0.2", "--duration", "3", "--rounds", "2", "--seed", "11", "--out", str(out)
    )
    return result, out


def test_every_row_has_its_rounds_medians_and_intervals(two_rounds):
    result, out = two_rounds
    assert result.returncode == 0, result.stdout + result.stderr
    rows = summary_rows(out)
    assert [r["target"] for r in rows] == ["lab-threaded", "gunicorn-sync"]
    for row in rows:
        assert row["rounds"] == 2 and len(row["per_round"]) == 2
        assert [r["round"] for r in row["per_round"]] == [1, 2]
        for record in row["per_round"]:
            missing = [k for k in PER_ROUND_KEYS if k not in record]
            assert not missing, missing
            assert record["error"] == "" and record["requests"] > 0
        for metric in ("rps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_cores"):
            low, high = row[metric + "_ci95"]
            assert low <= row[metric] <= high, (metric, row[metric], low, high)
        assert all(m + "_ci95" in row for m in METRICS)
        assert row["latency_source"].startswith("exact")
        assert row["errors"] == {
            "non_2xx": 0,
            "connection_refused": 0,
            "connection_reset": 0,
            "timeout": 0,
            "other": 0,
        }
        # 0.2 s requests: p50 is the sleep plus a little, from our own records
        assert 195 <= row["p50_ms"] <= 600
        assert 0 <= row["generator_headroom"] <= 1 and row["generator_processes"] == 1
        assert isinstance(row["unstable"], bool) and isinstance(row["machine_bound"], bool)
    gunicorn = rows[1]
    assert gunicorn["capacity"] == 4 and gunicorn["io_ceiling"] == pytest.approx(4 / 0.2)
    # both targets in each round, in the order the seed gave
    positions = {r["target"]: [p["position"] for p in r["per_round"]] for r in rows}
    assert sorted([positions["lab-threaded"][0], positions["gunicorn-sync"][0]]) == [1, 2]


def test_env_json_and_rerun_sh_repeat_the_run(two_rounds):
    _, out = two_rounds
    env = json.loads((out / "env.json").read_text())
    for key in (
        "cpu_model",
        "cpu_count",
        "cgroup_cpu_limit",
        "load_before",
        "load_after",
        "git_commit",
        "rerun",
    ):
        assert key in env, key
    assert env["seed"] == 11 and env["versions"]["waitress"] != "not installed"
    assert env["git_commit"]  # a sha, or "unknown: <why>"
    rerun = out / "rerun.sh"
    assert os.access(rerun, os.X_OK)
    text = rerun.read_text()
    assert "--seed 11" in text and "--rounds 2" in text and "--targets lab-threaded,gunicorn-sync" in text
    assert f"--out {out} " not in text  # a new directory, never the old one


def test_git_commit_comes_from_lab_git_commit_without_git(tmp_path):
    """In a container there is no .git: compose passes LAB_GIT_COMMIT."""
    env = {**os.environ, "LAB_GIT_COMMIT": "abc123", "GIT_DIR": str(tmp_path / "nowhere")}
    code = "from loadtest.run.environment import git_commit; print(git_commit())"
    got = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert got.stdout.strip() == "abc123"
    env.pop("LAB_GIT_COMMIT")
    got = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert got.stdout.startswith("unknown: ")


def test_two_point_sweep_has_a_row_per_user_count(tmp_path):
    result = run_compare(
        "--targets", "lab-threaded", "--scenario", "io", "--users", "1,4",
        "--sleep-s", "0.2", "--duration", "3", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = summary_rows(tmp_path)
    assert [(r["target"], r["users"]) for r in rows] == [("lab-threaded", 1), ("lab-threaded", 4)]
    one, four = rows
    assert four["rps"] > 2.5 * one["rps"]  # a thread per connection: 4 users overlap
    for row in rows:
        little = row["little"]
        # Little's law: requests inside the app ~ req/s x latency, generously
        assert little["in_flight_little"] == pytest.approx(row["users"], rel=0.35)
        assert little["in_flight_measured"] == pytest.approx(little["in_flight_little"], rel=0.35)
    assert (tmp_path / "locust" / "io" / "lab-threaded.u4.r1_stats.csv").exists()


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--rounds", "0", ("rounds", "0")),
        ("--users", "1,x", ("users", "1,x")),
        ("--users", "4,4", ("appears twice",)),
        ("--seed", "-1", ("seed",)),
        ("--target-args", "gunicorn-sync", ("NAME=ARGS",)),
        ("--target-args", "nope=--workers 1", ("nope",)),
        ("--warmup", "30", ("warmup",)),
    ],
)
def test_bad_new_flags_are_one_line_errors(flag, value, words):
    result = run_compare(flag, value, "--duration", "5")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_target_args_override_the_registry_and_rederive_capacity(tmp_path):
    result = run_compare(
        "--targets", "gunicorn-sync", "--target-args", "gunicorn-sync=--workers 1", "--scenario", "io",
        "--users", "3", "--sleep-s", "0.2", "--duration", "3", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (row,) = summary_rows(tmp_path)
    assert row["capacity"] == 1 and row["command"].endswith("--workers 1 app:app")
    assert row["pids"] == 1 and row["max_in_flight"] == 1
    assert any("--workers 1" in note for note in row["notes"])
    assert "--target-args 'gunicorn-sync=--workers 1'" in (tmp_path / "rerun.sh").read_text()


def test_printed_paths_name_the_host_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAB_RESULTS_HOST_DIR", "/home/me/wsgi-lab/results")
    assert environment.shown(tmp_path / "results" / "20260101T000000Z" / "report.html") == (
        "/home/me/wsgi-lab/results/20260101T000000Z/report.html"
    )
    assert environment.shown(Path("/elsewhere/x")) == "/elsewhere/x"
    monkeypatch.delenv("LAB_RESULTS_HOST_DIR")
    assert environment.shown(tmp_path / "results" / "r") == str(tmp_path / "results" / "r")
