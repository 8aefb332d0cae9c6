"""make bench's judgement on synthetic runs: the diff of two runs, the goals, the ratios to native servers.

No server and no wrk here: rows are built from per-round figures exactly as
``loadtest.bench`` builds them from measurements, so the rules are tested
bytes-in / verdict-out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest import bench
from loadtest import diff as run_diff
from loadtest.measure import stats


def row(target: str, cpu: list[float], rps: list[float]) -> dict:
    records = [{"rps": r, "cpu_us": c, "requests": 1000, "errors": ""} for c, r in zip(cpu, rps, strict=True)]
    summary = stats.summarize(records, bench.METRICS)
    return {
        "target": target,
        "explanation": target,
        "command_args": [],
        "per_round": records,
        "failed": "",
        **{m: summary[m] for m in bench.METRICS},
        **{m + stats.CI_SUFFIX: summary[m + stats.CI_SUFFIX] for m in bench.METRICS},
    }


def run(*rows: dict, load: float = 0.5) -> dict:
    return {
        "kind": "bench",
        "parameters": {
            "duration": 10,
            "connections": 16,
            "threads": 1,
            "rounds": 3,
            "warmup": 1,
            "app": "app:app",
        },
        "load_before": load,
        "load_after": load,
        "rows": list(rows),
        "goals": [],
        "native_cpu_ratio": {},
    }


BASE = run(
    row("lab-single", [400, 410, 405], [2000, 1980, 2010]),
    row("lab-threaded", [500, 520, 510], [1900, 1950, 1920]),
)


def verdicts(a: dict, b: dict) -> dict[str, str]:
    return {d["target"]: d["verdict"] for d in bench.diff_runs(a, b)}


def test_a_build_slowed_by_100_us_per_request_is_significant_and_slower():
    slowed = run(
        row("lab-single", [505, 512, 500], [1650, 1640, 1660]),
        row("lab-threaded", [600, 615, 610], [1600, 1620, 1590]),
    )
    for d in bench.diff_runs(BASE, slowed):
        assert d["verdict"] == "slower", d
        assert d["changes"]["cpu_us"]["significant"] and d["changes"]["cpu_us"]["direction"] == "slower"


def test_a_faster_build_is_significant_and_faster():
    faster = run(row("lab-single", [300, 305, 310], [2500, 2550, 2520]))
    assert verdicts(BASE, faster) == {"lab-single": "faster"}


def test_overlapping_rounds_are_no_clear_change():
    again = run(row("lab-single", [395, 420, 408], [1990, 2030, 1970]))
    assert verdicts(BASE, again) == {"lab-single": "no clear change"}


def test_disjoint_but_tiny_differences_are_within_the_noise():
    nudged = run(row("lab-single", [411, 412, 413], [2011, 2012, 2013]))  # +1.5% CPU, disjoint
    assert verdicts(BASE, nudged) == {"lab-single": "no clear change"}


def test_one_round_a_side_is_never_significant():
    a = run(row("lab-single", [400], [2000]))
    b = run(row("lab-single", [800], [1000]))
    assert verdicts(a, b) == {"lab-single": "no clear change"}


def test_cpu_up_and_rps_up_is_mixed():
    mixed = run(row("lab-single", [600, 610, 620], [3000, 3050, 3020]))
    assert verdicts(BASE, mixed) == {"lab-single": "mixed"}


def test_a_target_in_one_run_only_is_left_out():
    assert verdicts(BASE, run(row("waitress", [600, 610, 620], [1000, 1010, 990]))) == {}


def test_goals_use_the_best_native_server_and_the_pairs():
    rows = {
        r["target"]: r
        for r in (
            row("lab-single", [500, 500, 500], [2000, 2000, 2000]),
            row("granian", [420, 420, 420], [3000, 3000, 3000]),
            row("uwsgi", [400, 400, 400], [2500, 2500, 2500]),
            row("lab-threaded", [600, 600, 600], [2600, 2600, 2600]),
            row("flask-dev", [900, 900, 900], [1000, 1000, 1000]),
        )
    }
    goals = {g["goal"]: g for g in bench.check_goals(rows)}
    single = goals["lab-single CPU/req <= 1.25x best of granian/uwsgi"]
    assert single["ratio"] == pytest.approx(1.25) and single["verdict"] == "met"
    threaded = goals["lab-threaded req/s >= 2.5x flask-dev"]
    assert threaded["ratio"] == pytest.approx(2.6) and threaded["verdict"] == "met"
    assert goals["lab-forking req/s >= 1.2x gunicorn-sync-w2"]["verdict"] == "not measured"
    assert bench.native_ratios(rows) == {"lab-single": 1.25, "lab-threaded": 1.5}


def test_a_missed_goal_says_missed():
    rows = {
        r["target"]: r
        for r in (row("lab-event", [700] * 3, [1100] * 3), row("waitress", [650] * 3, [1000] * 3))
    }
    event = next(g for g in bench.check_goals(rows) if g["goal"].startswith("lab-event"))
    assert event["verdict"] == "MISSED" and event["ratio"] == pytest.approx(1.1)


def test_python_m_loadtest_diff_recognises_two_bench_runs(tmp_path: Path, capsys):
    slowed = run(
        row("lab-single", [505, 512, 500], [1650, 1640, 1660]),
        row("lab-threaded", [600, 615, 610], [1600, 1620, 1590]),
    )
    bench.write_run(tmp_path / "a", BASE, {"kind": "bench"}, ["--rounds", "3"])
    bench.write_run(tmp_path / "b", slowed, {"kind": "bench"}, ["--rounds", "3", "--out", "x"])
    assert run_diff.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "| lab-single" in out and out.count("| slower") == 2
    assert (tmp_path / "b" / "bench-diff-vs-a.md").is_file()
    rerun = (tmp_path / "b" / "rerun.sh").read_text()
    assert "-m loadtest.bench --rounds 3 --out" in rerun and " x" not in rerun


def test_a_directory_without_bench_json_is_refused_in_one_line(tmp_path: Path):
    with pytest.raises(SystemExit, match="is not a bench run"):
        bench.load_run(tmp_path)


def test_the_diff_warns_when_servers_that_are_not_ours_changed_too():
    base = run(row("waitress", [700, 705, 710], [1000, 1010, 990]), load=2.0)
    busy = run(row("waitress", [900, 910, 920], [700, 690, 710]), load=9.0)
    assert bench.reference_moves(base, busy) == ["waitress"]
    assert "caution: servers that are not ours changed too (waitress)" in bench.diff_text(
        "a", "b", base, busy
    )
    assert "caution" not in bench.diff_text("a", "b", BASE, BASE)
