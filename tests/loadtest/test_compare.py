"""A short, real comparison: real servers, real locust, real files -- and evidence that tells models apart."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port, lab_server, run_compare

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def three_models(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("compare") / "run"
    result = run_compare(
        "--targets",
        "lab-single,lab-threaded,lab-forking",
        "--scenario",
        "io",
        "--users",
        "6",
        "--sleep-s",
        "0.3",
        "--duration",
        "3",
        "--out",
        str(out),
    )
    return result, out


def rows_by_target(out: Path) -> dict[str, dict]:
    summary = json.loads((out / "summary.json").read_text())
    return {r["target"]: r for r in summary["rows"]}


def test_comparison_writes_every_file(three_models):
    result, out = three_models
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("summary.json", "summary.csv", "report.md", "report.html", "env.json"):
        assert (out / name).stat().st_size > 0, name
    for target in ("lab-single", "lab-threaded", "lab-forking"):
        ldir = out / "locust" / "io"
        for suffix in (
            "_stats.csv",
            "_stats_history.csv",
            "_failures.csv",
            ".identity.jsonl",
            ".locust.html",
        ):
            assert (ldir / f"{target}.r1{suffix}").exists(), f"{target}.r1{suffix}"
    with (out / "summary.csv").open() as fh:
        assert [r["target"] for r in csv.DictReader(fh)] == ["lab-single", "lab-threaded", "lab-forking"]
    env = json.loads((out / "env.json").read_text())
    assert env["cpu_count"] >= 1 and env["git_commit"] and env["versions"]["locust"]
    assert env["parameters"]["users"] == [6] and env["parameters"]["sleep_s"] == 0.3
    # progress lines: run i/N with its round, and live requests/s
    assert "[1/3] r1 io " in result.stdout and "[3/3] r1 io " in result.stdout
    assert "live" in result.stdout


def test_html_report_is_self_contained_with_images(three_models):
    _, out = three_models
    page = (out / "report.html").read_text()
    images = re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', page)
    assert len(images) >= 5  # throughput, latency, three timelines
    assert not re.search(r'(src|href)="https?://', page), "external resource in the report"
    assert "<script" not in page
    # it opens with one answer per target, derived from the measurements
    first_answers = page[: page.index("<table")]
    for target in ("lab-single", "lab-threaded", "lab-forking"):
        assert f"<li>{target}: " in first_answers


def test_evidence_tells_the_models_apart(three_models):
    _, out = three_models
    rows = rows_by_target(out)
    single, threaded, forking = rows["lab-single"], rows["lab-threaded"], rows["lab-forking"]
    for row in rows.values():
        assert row["error"] == "" and row["failures"] == 0 and row["requests"] > 0, row
        assert row["models_seen"] == [row["target"]]
        assert isinstance(row["server_cpu_cores"], float)
    assert single["max_in_flight"] == 1 and single["pids"] == 1 and single["threads"] == 1
    assert threaded["pids"] == 1 and threaded["threads"] >= 2 and threaded["max_in_flight"] >= 2
    assert forking["pids"] >= 2 and forking["max_in_flight"] >= 2
    # generous: the one-at-a-time server cannot beat one request per sleep
    assert single["rps"] <= 1 / 0.3 * 1.1
    assert threaded["rps"] > 2 * single["rps"]
    assert "at most 1 in flight" in single["answer"]
    assert single["io_ceiling"] == pytest.approx(1 / 0.3)


def test_hosts_mode_measures_a_running_server(tmp_path):
    port = free_port()
    with lab_server("threaded", port, env={"LAB_SERVER_MODEL": "lab-threaded"}):
        result = run_compare(
            "--hosts",
            f"lab-threaded=http://127.0.0.1:{port}",
            "--users",
            "4",
            "--sleep-s",
            "0.2",
            "--duration",
            "2",
            "--out",
            str(tmp_path),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    row = rows_by_target(tmp_path)["lab-threaded"]
    assert row["kind"] == "external"
    # the server reports its own process tree at /_lab/usage
    assert isinstance(row["server_cpu_cores"], float) and row["server_cpu_cores"] >= 0
    assert row["server_mem_mb"] > 5 and row["server_mem_kind"] in ("pss", "rss")
    assert row["requests"] > 0 and row["threads"] >= 2


def test_venv_runs_the_local_targets_with_another_interpreter(tmp_path):
    """--venv: the targets run on that environment's python, and env.json and the rows say so.

    The second environment borrows this one's packages through a .pth file, so it
    starts in a second instead of a pip install; what differs is the interpreter
    path the server reports from inside (``/_lab/usage``).
    """
    venv = tmp_path / "venv2"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "lab.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    out = tmp_path / "run"
    result = run_compare(
        "--venv", str(venv), "--targets", "lab-single", "--scenario", "io", "--duration", "2",
        "--warmup", "0.5", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    env = json.loads((out / "env.json").read_text())
    python = str(venv.resolve() / "bin" / "python")
    assert env["server_python"] == python
    assert env["server_interpreters"]["lab-single"]["executable"] == python
    assert env["server_interpreters"]["lab-single"]["gil_enabled"] in (True, False)
    assert rows_by_target(out)["lab-single"]["interpreter"]["executable"] == python


GREETS_FROM_ITS_ENV = """
import os
def create_app(prefix):
    greeting = os.environ["GREETING"]  # the factory fails without the team's variable
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{prefix} {greeting} {os.environ['SECRET_KEY']}".encode()]
    return app
"""


def test_a_teams_factory_with_its_env_and_directory_serves_every_target(tmp_path):
    """--app 'app:create_app(...)' --chdir --env --env-file, run from elsewhere: the team's app.py
    (not our demo) answers on each target, and env.json keeps the variables' names, not values."""
    team = tmp_path / "team"
    team.mkdir()
    (team / "app.py").write_text(GREETS_FROM_ITS_ENV)
    (tmp_path / ".env").write_text("SECRET_KEY=s3cret-value\n")
    out = tmp_path / "run"
    result = run_compare(
        "--app", "app:create_app('team')", "--chdir", str(team), "--env", "GREETING=hi",
        "--env-file", str(tmp_path / ".env"), "--targets", "gunicorn-sync,waitress", "--scenario", "hello",
        "--users", "2", "--duration", "2", "--warmup", "0.5", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = rows_by_target(out)
    for name in ("gunicorn-sync", "waitress"):
        assert rows[name]["requests"] > 0 and rows[name]["failures"] == 0 and rows[name]["error"] == ""
    env_text = (out / "env.json").read_text()
    assert "s3cret-value" not in env_text and "SECRET_KEY" in env_text
    missing = run_compare("--app", "app:create_app('team')", "--chdir", str(team), "--targets", "waitress")
    assert missing.returncode == 2 and "the factory raised KeyError: 'GREETING'" in missing.stderr
