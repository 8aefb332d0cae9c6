"""The slow scenario: its figures from records, and one real comparison (locust, real servers)."""

from __future__ import annotations

import json

import pytest

from loadtest.registry.records import SlowRow
from loadtest.report import main as report
from loadtest.run import plan, slow
from tests.support import run_compare


def slow_row(target: str, rate: float, p95: float, first: float | None, **extra) -> dict:
    """A slow.json row as measure writes it, with its sentence."""
    row = {
        "target": target, "normal_users": 3, "slow_clients": 20, "requests": 40, "success_rate": rate,
        "p50_ms": p95 / 2, "p95_ms": p95, "first_success_s": first,
        "held": f"{target} held up to 21 client connections in 1 process(es) running 9 threads",
        "identity_file": f"locust/slow/{target}.r1.identity.jsonl", **extra,
    }  # fmt: skip
    return {**row, "answer": slow.verdict(SlowRow.from_dict(row))}


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
    assert "none" in slow.table([SlowRow("x", **got, held="-")])


def test_held_sentence_names_what_was_measured():
    sentence = slow.held_sentence(200, slow.Holding(1, 1, 0), slow.Holding(1, 65, 64))
    assert "64 client connections" in sentence and "65 threads" in sentence and "200 slow clients" in sentence
    assert "not measured" in slow.held_sentence(200, None, None)


def test_verdict_kept_answering_slowed_starved():
    assert "kept answering" in slow_row("a", 1.0, 40.0, 0.1)["answer"]
    assert "slowed" in slow_row("b", 1.0, 4000.0, 0.1)["answer"]  # all answered, but p95 over 1 s
    assert "slowed" in slow_row("c", 0.8, 500.0, 0.1)["answer"]
    starved = slow_row("d", 0.1, 5000.0, None)["answer"]
    assert "starved" in starved and "none ever answered" in starved and "21 client connections" in starved
    assert "FAILED" in slow.verdict(SlowRow("e", error="failed to start: boom"))


def test_report_renders_a_slow_clients_section(tmp_path):
    rows = [
        slow_row("lab-event", 1.0, 12.0, 0.05),
        slow_row("lab-single", 0.0, 5000.0, None),
        {"target": "lab-broken", "normal_users": 3, "slow_clients": 20, "error": "failed to start: boom"},
    ]
    rows[-1]["answer"] = slow.verdict(SlowRow.from_dict(rows[-1]))
    env = {"parameters": {"users": [3], "duration": 10}, "cpu_count": 2, "git_commit": "abc"}
    (tmp_path / "env.json").write_text(json.dumps(env))
    (tmp_path / "slow.json").write_text(json.dumps(rows))
    report.main([str(tmp_path)])  # re-rendering a slow run's directory reads slow.json
    page = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    for doc in (page, md):
        assert "Slow clients" in doc and "20 slow clients" in doc and "3 normal users" in doc
        assert "lab-event kept answering normal users (100% of normal requests answered, p95 12 ms" in doc
        assert "lab-single starved normal users" in doc and "FAILED: failed to start: boom" in doc
    assert "<td>100%</td><td>6</td><td>12</td><td>0.1</td>" in page  # success, p50, p95, first success
    assert "<td>0%</td><td>2500</td><td>5000</td><td>none</td>" in page
    assert "| lab-single | 3 | 20 | 0% | 2500 | 5000 | none |" in md
    assert 'src="http' not in page and "<script" not in page  # self-contained


@pytest.mark.slow
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
    assert "lab-event kept answering normal users" in result.stdout
    assert "lab-single starved normal users" in result.stdout
    page = (out / "report.html").read_text()
    assert "<h2>Slow clients</h2>" in page and "20 slow clients" in page
    assert "lab-event kept answering normal users" in page and "lab-single starved normal users" in page
    assert "## Slow clients" in (out / "report.md").read_text()
    assert (out / "env.json").exists() and (out / "rerun.sh").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "7"], "--scenario slow needs --duration above 7 s"),
        (["--hosts", "a=http://127.0.0.1:1"], "--scenario slow and --hosts do not mix"),
    ],
)
def test_slow_refuses_what_it_cannot_measure(args, message):
    parsed = plan.build_parser().parse_args(["--scenario", "slow", *args])
    with pytest.raises(plan.UsageError, match=message):
        plan.make_plan(parsed, [], lambda url: None)
