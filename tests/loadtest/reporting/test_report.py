"""The report on synthetic run directories: intervals, no ranking inside the noise, flags, errors, sweeps."""

from __future__ import annotations

import html
import json
import subprocess
import sys

import pytest

from loadtest.measure import stats
from loadtest.measure.rows import restat
from loadtest.registry.records import ComparisonRow
from loadtest.report import main as report
from loadtest.reporting import charts, comparison
from tests.synthetic_runs import env, old_row, row, typed_row, write_run


def render(tmp_path, rows, environment=None) -> tuple[str, str]:
    out = write_run(tmp_path / "run", rows, environment)
    report.main([str(out)])
    return html.unescape((out / "report.html").read_text()), (out / "report.md").read_text()


def test_whiskers_go_from_the_median_to_each_end_of_the_interval():
    assert charts.yerr([10.0, 5.0, None], [[8.0, 13.0], None, [1.0, 2.0]]) == [
        [2.0, 0.0, 0.0],
        [3.0, 0.0, 0.0],
    ]


def test_overlapping_intervals_are_not_ranked_and_disjoint_ones_are(tmp_path):
    rows = [
        row("hello", "lab-forking", [1800, 1838, 1900], users=16),
        row("hello", "gunicorn-sync", [1790, 1820, 1880], users=16),
        row("hello", "lab-single", [1100, 1143, 1160], users=16),
    ]
    page, md = render(tmp_path, rows)
    for text in (page, md):
        assert "lab-forking and gunicorn-sync: no clear difference (intervals overlap)." in text
        assert "lab-forking 1838 ~ gunicorn-sync 1820 > lab-single 1143" in text
        assert "gunicorn-sync and lab-single: no clear difference" not in text
        assert "1838 [1800-1900]" in text  # median and interval in the table
    assert "holds the true median 75% of the time" in md
    assert "exact percentiles of our own per-request records" in page


def test_a_wide_spread_is_flagged_unstable_with_its_likely_cause(tmp_path):
    wobbly = row("io", "lab-threaded", [15.0, 19.0, 20.0])
    for i, record in enumerate(wobbly["per_round"]):
        record["load_before"], record["load_after"] = 0.3 + i, 3.5
    saturated = row("io", "lab-forking", [10.0, 13.0, 14.0], generator_saturated=True)
    page, md = render(tmp_path, [wobbly, saturated], env())
    for text in (page, md):
        assert "unstable: spread req/s 26%, p50 32%" in text and "of the median over 3 rounds" in text
        assert "likely cause: machine busy (load average 0.30-3.50 on 2 cores)" in text
        assert "likely cause: the load generator saturated a core" in text
        assert "generator saturated: figures are a floor" in text


def test_errors_flags_headroom_and_cpu_limit_show_in_the_html(tmp_path):
    failing = row(
        "io",
        "lab-single",
        [2.0, 2.0, 2.0],
        failures=12,
        errors={"non_2xx": 10, "connection_refused": 0, "connection_reset": 2, "timeout": 0, "other": 0},
        machine_bound=True,
        cpu_limit=1.5,
        generator_headroom=0.35,
        notes=["X-Server-Model said something else"],
    )
    page, md = render(tmp_path, [failing])
    assert "<h2>Failures and notes</h2>" in page
    for text in (page, md):
        assert "failed requests: 12: 10 non 2xx, 2 connection reset" in text
        assert "machine-bound: server + generator used nearly every core" in text
        assert "note: X-Server-Model said something else" in text
    assert "<td>1.5</td>" in page and "<td>35%</td>" in page
    assert "12 of" in page and "requests failed: 10 non 2xx, 2 connection reset" in page  # the row's sentence


def test_a_sweep_draws_throughput_against_users_and_checks_littles_law(tmp_path):
    rows = []
    for users, single, threaded in ((1, 1.9, 1.9), (2, 1.95, 3.9), (4, 1.96, 7.8), (8, 1.97, 15.0)):
        rows.append(row("io", "lab-single", [single * 0.99, single, single * 1.01], users=users))
        rows.append(row("io", "lab-threaded", [threaded * 0.99, threaded, threaded * 1.01], users=users))
    page, md = render(tmp_path, rows)
    assert (tmp_path / "run" / "charts" / "sweep-io.png").stat().st_size > 5000
    assert "<h2>Sweep: io</h2>" in page and "Little's law" in page
    typed = [ComparisonRow.from_dict(r) for r in rows]
    knees = {(r.target, r.users) for r in typed if charts.knee(charts.by_target(typed)[r.target]) is r}
    assert knees == {("lab-single", 1)}  # lab-threaded still rising at 8 users: no knee inside the sweep
    assert "| lab-threaded | 8 | 15.0 [14.8-15.2] |" in md and "still rising" in md
    # req/s x mean latency comes back to the user count when users do not pause
    assert "| lab-threaded | 4 | 7.80 [7.72-7.88] | 512.8 | 4.0 | 4.0 |  |" in md


def test_an_old_run_directory_still_renders_as_one_round_without_intervals(tmp_path):
    old_env = {
        "started": "2026-01-01T00:00:00+00:00",
        "python": "3.11.2",
        "cpu_count": 2,
        "git_commit": "unknown",
        "versions": {},
        "parameters": {"users": 10, "duration": 8, "spawn_rate": 10, "app": "app:app", "sleep_s": 0.5},
    }
    rows = [old_row("io", "lab-single", 1.9), old_row("io", "lab-threaded", 19.0)]
    page, md = render(tmp_path, rows, old_env)
    assert "One round per row: no intervals" in md
    assert "from single measurements (no interval" in page
    assert "locust's aggregated statistics" in page
    csv_text = (tmp_path / "run" / "summary.csv").read_text()
    assert csv_text.splitlines()[0].startswith("scenario,target,kind,url,users,rounds")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["rows"][0]["answer"].startswith(
        "lab-single"
    )


def test_rerendering_something_that_is_not_a_run_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.report", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "is not a comparison result" in result.stderr


@pytest.mark.parametrize("n", [3, 4])
def test_the_interval_note_states_the_coverage_of_min_max(n):
    rows = [typed_row("io", "x", [1.0 + i for i in range(n)])]
    assert f"{stats.coverage(n):.0%} of the time" in comparison.interval_note(rows)


def test_the_timeline_of_a_multi_process_pool_shows_why_it_missed_its_ceiling(tmp_path):
    records = [
        {"t": t0, "ms": 1000.0, "pid": pid, "thread": thread, "start": f"{t0:.6f}", "end": f"{t0 + 1:.6f}"}
        for t0, pid, thread in (
            (0.0, "A", "t1"),
            (0.0, "A", "t2"),
            (0.0, "B", "t1"),
            (1.0, "B", "t2"),
            (1.0, "A", "t1"),
            (1.0, "A", "t2"),
            (1.0, "B", "t1"),
        )
    ]
    identity = tmp_path / "run" / "locust" / "io" / "gunicorn-gthread.r2.identity.jsonl"
    identity.parent.mkdir(parents=True)
    identity.write_text("".join(json.dumps(r) + "\n" for r in records))
    gthread = row(
        "io",
        "gunicorn-gthread",
        [3.4, 3.5, 3.5],
        users=4,
        pids=2,
        threads=4,
        max_threads_per_pid=2,
        io_ceiling=4.0,
        io_efficiency=0.87,
        identity_file="locust/io/gunicorn-gthread.r2.identity.jsonl",
    )
    gthread["per_round"][1]["identity_file"] = gthread["identity_file"]
    page, _ = render(tmp_path, [gthread])
    assert "for 50% of the run one process had all its threads busy while another had a free one" in page
    assert (tmp_path / "run" / "charts" / "timeline-io-gunicorn-gthread.png").stat().st_size > 1000
    assert 'href="locust/io/gunicorn-gthread.r2.locust.html">r2 locust report' in page


def test_a_rerender_applies_todays_stability_rule_to_the_rounds():
    stale = row(
        "io", "lab-threaded", [19.8, 19.7, 19.9], unstable=True, unstable_metrics=["server_cpu_cores"]
    )
    for record, cores in zip(stale["per_round"], (0.004, 0.01, 0.012), strict=True):
        record["server_cpu_cores"] = cores
    stale["unstable_reason"] = "machine busy"
    fresh = restat(ComparisonRow.from_dict(stale)).as_dict()
    assert fresh["unstable"] is False and fresh["unstable_metrics"] == [] and fresh["unstable_reason"] == ""


def test_a_machine_busy_with_other_work_is_said_so():
    crowded = row("hello", "lab-threaded", [1790, 1800, 1810], users=16, machine_cpu=0.99)
    for record in crowded["per_round"]:
        record["server_cpu_cores"], record["generator_cores"] = 0.7, 0.5
    text = comparison.status(ComparisonRow.from_dict(crowded), 2)
    assert "machine busy: 99% of 2 cores in use, server + generator 1.20 cores" in text
    assert comparison.status(typed_row("hello", "x", [1, 1, 1], machine_cpu=0.4), 2) == "ok"
    assert comparison.row_sentence(ComparisonRow.from_dict(crowded), 2).endswith(
        "other processes took the rest, so the figures may be low]"
    )


def test_a_run_of_overlapping_neighbours_is_one_sentence():
    rows = [typed_row("cpu", name, [40 + i, 44 + i, 48 + i]) for i, name in enumerate(("a", "b", "c"))]
    rows.append(typed_row("cpu", "d", [10, 10.5, 11]))
    lines = comparison.ranking(rows)
    assert lines[1:] == ["c, b and a: no clear order (each interval overlaps the next)."]
    assert lines[0].endswith("c 46.0 ~ b 45.0 ~ a 44.0 > d 10.5.")
    # a row that reached its ceiling was not held back by a busy machine
    capped = typed_row("io", "x", [19.8, 19.8, 19.9], machine_cpu=0.98, io_efficiency=0.99)
    assert comparison.status(capped, 2) == "ok"
