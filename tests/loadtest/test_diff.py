"""loadtest.diff on synthetic run directories: significance, rows in one run only, old formats, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadtest.diff import main as diff
from tests.synthetic_runs import old_row, row, write_run


def by_key(doc: dict) -> dict[tuple[str, str, int], dict]:
    return {(r["scenario"], r["target"], r["users"]): r for r in doc["rows"]}


@pytest.fixture
def two_runs(tmp_path):
    a = write_run(
        tmp_path / "run-a",
        [
            row("io", "gunicorn-sync", [7.8, 7.9, 8.0]),
            row("io", "lab-threaded", [19.0, 19.5, 19.8]),
            row("hello", "lab-single", [1100, 1150, 1190]),
            row("cpu", "lab-single", [50, 51, 52]),
        ],
    )
    b = write_run(
        tmp_path / "run-b",
        [
            row("io", "gunicorn-sync", [1.95, 1.98, 2.0]),  # started with -w 1 instead of -w 4
            row("io", "lab-threaded", [19.2, 19.6, 19.9]),
            row("cpu", "lab-forking", [90, 95, 97]),
            row("cpu", "lab-single", [40, 50, 60]),  # wide spread: unstable
        ],
    )
    return a, b


def test_a_change_beyond_both_intervals_is_significant_and_overlap_is_not(two_runs, tmp_path):
    a, b = two_runs
    out = tmp_path / "d"
    assert diff.main([str(a), str(b), "--out", str(out)]) == 0
    doc = json.loads((out / "diff.json").read_text())
    rows = by_key(doc)
    sync = rows[("io", "gunicorn-sync", 10)]
    assert sync["significant"] is True and sync["metrics"]["rps"]["direction"] == "worse"
    assert sync["metrics"]["rps"]["change_pct"] == pytest.approx(1.98 / 7.9 - 1)
    assert sync["metrics"]["p95_ms"]["significant"] and sync["metrics"]["p95_ms"]["direction"] == "worse"
    threaded = rows[("io", "lab-threaded", 10)]
    assert threaded["significant"] is False and threaded["significant_metrics"] == []
    assert doc["only_in_a"] == [{"scenario": "hello", "target": "lab-single", "users": 10}]
    assert doc["only_in_b"] == [{"scenario": "cpu", "target": "lab-forking", "users": 10}]
    assert (
        diff.row_status(rows[("cpu", "lab-single", 10)])
        == "no clear change (intervals overlap); unstable in B"
    )
    md = (out / "diff.md").read_text()
    assert "1 of 3 rows with 3+ rounds on both sides changed significantly in req/s" in md
    assert "by chance alone about 10% of unchanged rows would be" in md
    assert (
        "only in A: hello / lab-single / 10 users" in md and "only in B: cpu / lab-forking / 10 users" in md
    )
    assert "no clear change (intervals overlap)" in md
    page = (out / "diff.html").read_text()
    assert "data:image/png;base64," in page and "significant (worse)" in page


def test_default_out_is_inside_run_b_named_after_run_a(two_runs):
    a, b = two_runs
    assert diff.main([str(a), str(b)]) == 0
    assert (b / "diff-vs-run-a" / "diff.html").stat().st_size > 1000


def test_old_run_directories_have_no_interval_and_nothing_is_called_significant(tmp_path):
    a = write_run(tmp_path / "old-a", [old_row("io", "lab-single", 1.9)])
    b = write_run(tmp_path / "old-b", [old_row("io", "lab-single", 12.0)])
    doc = diff.diff(*(diff.load_run(p)[0] for p in (a, b)))
    (only,) = doc["rows"]
    assert only["rounds_a"] == only["rounds_b"] == 1
    assert only["significant"] is False and only["metrics"]["rps"]["a_ci95"] is None
    assert diff.row_status(only) == "fewer than 3 rounds: cannot tell (1 and 1)"
    # a new run against an old one: still no claim, one side has no interval
    new = write_run(tmp_path / "new", [row("io", "lab-single", [11.0, 12.0, 12.5])])
    doc = diff.diff(diff.load_run(a)[0], diff.load_run(new)[0])
    assert doc["rows"][0]["significant"] is False


def test_a_failed_row_is_paired_but_not_compared(tmp_path):
    a = write_run(tmp_path / "a", [row("io", "lab-event", [8.0, 8.1, 8.2])])
    b = write_run(tmp_path / "b", [row("io", "lab-event", [1.0, 1.0, 1.0], error="failed to start: boom")])
    doc = diff.diff(diff.load_run(a)[0], diff.load_run(b)[0])
    (only,) = doc["rows"]
    assert only["significant"] is False and only["error_b"] == "failed to start: boom"
    assert diff.row_status(only) == "failed in B"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "nowhere", "no such directory"),
        (lambda tmp: tmp, "no summary.json"),
    ],
)
def test_bad_run_directories_get_a_one_line_error_and_exit_2(tmp_path, make, message):
    good = write_run(tmp_path / "good", [row("io", "lab-single", [2.0, 2.0, 2.0])])
    bad = make(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.diff", str(bad), str(good)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(bad) in lines[0]


def test_two_rounds_a_side_are_too_few_and_a_tiny_change_is_no_change(tmp_path):
    # two rounds: disjoint min..max intervals happen by chance a third of the time
    a = write_run(tmp_path / "a", [row("io", "lab-single", [1.0, 1.1])])
    b = write_run(tmp_path / "b", [row("io", "lab-single", [1.5, 1.6])])
    (two,) = diff.diff(diff.load_run(a)[0], diff.load_run(b)[0])["rows"]
    assert two["significant"] is False and two["chance_disjoint"] == pytest.approx(1 / 3)
    assert "fewer than 3 rounds: cannot tell" in diff.row_status(two)
    # disjoint but 1% apart: below what run-to-run drift can resolve
    a = write_run(tmp_path / "c", [row("io", "lab-single", [100.0, 100.1, 100.2])])
    b = write_run(tmp_path / "d", [row("io", "lab-single", [101.0, 101.1, 101.2])])
    (tiny,) = diff.diff(diff.load_run(a)[0], diff.load_run(b)[0])["rows"]
    assert tiny["metrics"]["rps"]["change_pct"] == pytest.approx(0.00999, abs=1e-4)
    assert tiny["significant"] is False


def test_a_change_of_nearly_nothing_is_not_significant(tmp_path):
    a = write_run(
        tmp_path / "a",
        [row("io", "x", [10.0, 10.1, 10.2], server_cpu_cores=0.01, server_cpu_cores_ci95=[0.01, 0.011])],
    )
    b = write_run(
        tmp_path / "b",
        [row("io", "x", [10.0, 10.1, 10.2], server_cpu_cores=0.02, server_cpu_cores_ci95=[0.02, 0.021])],
    )
    (r,) = diff.diff(diff.load_run(a)[0], diff.load_run(b)[0])["rows"]
    assert r["metrics"]["server_cpu_cores"]["change_pct"] == pytest.approx(1.0)
    assert r["metrics"]["server_cpu_cores"]["significant"] is False


def test_a_significant_change_measured_on_a_busy_machine_says_so(tmp_path):
    before = row("cpu", "lab-single", [30.0, 31.0, 31.5], cpu_count=2)
    for record in before["per_round"]:
        record["load_before"], record["load_after"] = 8.8, 9.1
    after = row("cpu", "lab-single", [45.0, 46.0, 49.0], cpu_count=2)
    doc = diff.diff(
        diff.load_run(write_run(tmp_path / "a", [before]))[0],
        diff.load_run(write_run(tmp_path / "b", [after]))[0],
    )
    (r,) = doc["rows"]
    assert r["significant"] and r["busy_a"] == "load 9.1 on 2 cores" and r["busy_b"] == ""
    assert diff.row_status(r).endswith(
        "machine busy in A (load 9.1 on 2 cores): the change may be the machine's"
    )
    assert "1 of them measured on a busy machine" in diff.headline(doc)


def test_paired_rows_get_both_runs_timelines_with_their_cpu_cores(tmp_path):
    """A and B each keep identity records; the diff draws A's timeline and B's for the row."""
    runs = []
    for name in ("run-a", "run-b"):
        identity = tmp_path / name / "locust" / "cpu" / "lab-threaded.r1.identity.jsonl"
        identity.parent.mkdir(parents=True)
        lines = [
            {"t": 100.0 + i, "ms": 200.0, "ok": True, "pid": "7", "thread": f"T{i % 2}", "start": 100.0 + i,
             "end": 100.2 + i, "cpu_ms": "20.0", "lane_kind": "thread"}
            for i in range(6)
        ]  # fmt: skip
        identity.write_text("".join(json.dumps(r) + "\n" for r in lines))
        relative = str(identity.relative_to(tmp_path / name))
        cpu_row = row("cpu", "lab-threaded", [50, 51, 52], identity_file=relative)
        runs.append(write_run(tmp_path / name, [cpu_row]))
    out = tmp_path / "d"
    assert diff.main([str(runs[0]), str(runs[1]), "--out", str(out)]) == 0
    md = (out / "diff.md").read_text()
    assert "## Timelines" in md and "dark core" in md
    assert "![A: cpu / lab-threaded / 10 users](diff-timeline-1.png)" in md
    assert "![B: cpu / lab-threaded / 10 users](diff-timeline-2.png)" in md
    assert (out / "diff-timeline-2.png").stat().st_size > 5_000
    assert '<img alt="A: cpu / lab-threaded / 10 users"' in (out / "diff.html").read_text()
