"""The locustfile under real locust: distributed identity recording and the web UI's target dropdown."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.support import ROOT, free_port, lab_server, stop

pytestmark = pytest.mark.slow
LOCUSTFILE = str(ROOT / "loadtest" / "generator" / "locustfile.py")


def locust_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LAB_HOSTS"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_workers_forward_identity_records_to_the_master(tmp_path):
    """--processes 2: a master and two forked workers, locust's own distributed mode."""
    port = free_port()
    identity = tmp_path / "identity.jsonl"
    with lab_server("threaded", port, env={"LAB_SERVER_MODEL": "lab-threaded"}) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                LOCUSTFILE,
                "--headless",
                "--processes",
                "2",
                "--users",
                "4",
                "--spawn-rate",
                "4",
                "--run-time",
                "3s",
                "--host",
                f"http://127.0.0.1:{port}",
                "--sleep-s",
                "0.2",
                "--identity-file",
                str(identity),
                "--csv",
                str(tmp_path / "run"),
                "--only-summary",
                "IoUser",
            ],
            cwd=tmp_path,
            env=locust_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        server_pid = str(server.pid)
    assert result.returncode == 0, result.stderr[-2000:]
    with (tmp_path / "run_stats.csv").open() as fh:
        total = next(int(r["Request Count"]) for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    records = [json.loads(line) for line in identity.read_text().splitlines()]
    assert total > 10
    # every request locust counted on the workers reached the master's file (small slack
    # for a request that finished after the workers' final flush)
    assert total - 2 <= len(records) <= total + 2
    assert {r["pid"] for r in records} == {server_pid}
    assert all(r["model"] == "lab-threaded" and "sleep" in r["name"] and r["ok"] for r in records)
    assert all(r["status"] == 200 and r["error"] == "" for r in records)
    assert len({r["thread"] for r in records}) >= 2
    # --sleep-s 0.2 reached the workers (the default is 0.5)
    inside = sorted(float(r["end"]) - float(r["start"]) for r in records)
    assert inside[0] >= 0.19 and inside[len(inside) // 2] < 0.4
    assert "identity:" in result.stderr and "in flight" in result.stderr


def http(url: str, data: dict | None = None) -> dict:
    body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=5) as r:
        return json.loads(r.read())


def test_web_ui_offers_targets_from_lab_hosts_and_they_override_the_host(tmp_path):
    port, web = free_port(), free_port()
    with lab_server("single", port, env={"LAB_SERVER_MODEL": "lab-single"}):
        ui = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                LOCUSTFILE,
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(web),
                "--host",
                "http://127.0.0.1:9",  # deliberately wrong: the target must win
            ],
            cwd=tmp_path,
            env=locust_env(LAB_HOSTS=f"lab-single=http://127.0.0.1:{port},other=http://127.0.0.1:9"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{web}"
            deadline = time.monotonic() + 30
            page = ""
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(base + "/", timeout=2) as r:
                        page = r.read().decode()
                    break
                except OSError:
                    time.sleep(0.2)
            # custom arguments reach the UI: the scenario knobs, the class picker (the server picker
            # itself is tested in tests/e2e/test_locust_ui.py)
            assert "sleep_s" in page and "cpu_ms" in page
            assert '"show_userclass_picker": true' in page
            started = http(
                base + "/swarm",
                {
                    "user_count": 2,
                    "spawn_rate": 2,
                    "host": "http://127.0.0.1:9",
                    "user_classes": ["HelloUser"],
                    "target": "lab-single",
                    "sleep_s": "0.1",
                },
            )
            assert started["success"], started
            time.sleep(3)
            stats = http(base + "/stats/requests")
            http(base + "/stop", {})
        finally:
            stop(ui)
    assert stats["total_rps"] >= 0
    names = {s["name"]: s for s in stats["stats"]}
    hello = [s for name, s in names.items() if name.startswith("hello")]
    assert hello and hello[0]["num_requests"] > 0, stats
    assert names["Aggregated"]["num_failures"] == 0, stats
