"""The slow scenario: its figures from records, and one real comparison (locust, real servers)."""

from __future__ import annotations

import json

from loadtest import slow
from tests.support import run_compare


def test_normal_figures_count_timeouts_and_time_the_first_success():
    records = [
        {"t": 100.0, "ms": 5000.0, "ok": False},  # a timeout: the server never answered
        {"t": 100.0, "ms": 5000.0, "ok": False},
        {"t": 105.0, "ms": 2.0, "ok": True},
        {"t": 105.1, "ms": 4.0, "ok": True},
    ]
    got = slow.normal_figures(records)
    assert got["requests"] == 4 and got["success_rate"] == 0.5
    assert abs(got["first_success_s"] - 5.002) < 1e-9
    assert got["p95_ms"] == 5000.0


def test_no_success_at_all_says_none():
    got = slow.normal_figures([{"t": 1.0, "ms": 5000.0, "ok": False}])
    assert got["success_rate"] == 0.0 and got["first_success_s"] is None
    assert "none" in slow.table([{"target": "x", **got, "held": "-"}])


def test_held_sentence_names_what_was_measured():
    sentence = slow.held_sentence(200, slow.Holding(1, 1, 0), slow.Holding(1, 65, 64))
    assert "64 client connections" in sentence and "65 threads" in sentence and "200 slow clients" in sentence
    assert "not measured" in slow.held_sentence(200, None, None)


def test_compare_slow_event_keeps_answering_single_starves(tmp_path):
    out = tmp_path / "slow"
    result = run_compare(
        "--scenario", "slow", "--targets", "lab-event,lab-single", "--slow-clients", "20",
        "--users", "3", "--duration", "10", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {r["target"]: r for r in json.loads((out / "slow.json").read_text())}
    event, single = rows["lab-event"], rows["lab-single"]
    assert event["success_rate"] == 1.0 and event["p95_ms"] < 1000
    assert event["first_success_s"] < 1.0
    assert event["peak"]["threads"] <= 1 + 8  # the loop and its pool: no thread per slow client
    # One trickled head holds single mode's only worker for --timeout (30 s): nobody else is served.
    assert single["success_rate"] < 0.5, single
    assert "lab-single" in result.stdout and "what the slow clients held" in result.stdout
