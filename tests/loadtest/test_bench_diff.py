"""make bench's judgement on synthetic runs: the diff of two runs, the goals, the ratios to native servers.

No server and no wrk here: rows are built from per-round figures exactly as ``loadtest.bench``
builds them from measurements, and two bench runs are judged by ``loadtest.diff`` with the rule
every diff uses (``loadtest.measure.change``, table by ``loadtest.reporting.bench_diff``): bytes in,
verdict out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.bench import main as bench
from loadtest.bench.goals import check_goals, native_ratios
from loadtest.bench.measuring import bench_row
from loadtest.diff import main as run_diff
from loadtest.measure import change
from loadtest.registry import records
from loadtest.registry.records import BenchParameters, BenchRound, BenchRow, BenchRun
from loadtest.registry.targets import lookup
from loadtest.reporting import bench_diff
from tests.support import assert_one_line_error, run_module

SLOWER, FASTER = "significant (worse)", "significant (better)"
NO_CHANGE = "no clear change (intervals overlap)"


def row(target: str, cpu: list[float], rps: list[float]) -> BenchRow:
    """A target measured in len(cpu) rounds, summarised as bench summarises it."""
    rounds = [BenchRound(r, c, requests=1000) for c, r in zip(cpu, rps, strict=True)]
    summary = bench_row(lookup(target) or lookup("lab-single"), rounds)  # type: ignore[arg-type]
    summary.target = target
    return summary


def run(*rows: BenchRow, load: float = 0.5) -> BenchRun:
    return BenchRun(
        parameters=BenchParameters(duration=10, connections=16, threads=1, rounds=3, warmup=1, app="app:app"),
        rows=list(rows),
        load_before=load,
        load_after=load,
    )


BASE = run(
    row("lab-single", [400, 410, 405], [2000, 1980, 2010]),
    row("lab-threaded", [500, 520, 510], [1900, 1950, 1920]),
)


def verdicts(a: BenchRun, b: BenchRun) -> dict[str, str]:
    return {d["target"]: d["verdict"] for d in bench_diff.pairs(a, b)}


def test_a_build_slowed_by_100_us_per_request_is_significant_and_slower():
    slowed = run(
        row("lab-single", [505, 512, 500], [1650, 1640, 1660]),
        row("lab-threaded", [600, 615, 610], [1600, 1620, 1590]),
    )
    for d in bench_diff.pairs(BASE, slowed):
        assert d["verdict"] == SLOWER, d
        assert d["changes"]["cpu_us"].significant and d["changes"]["cpu_us"].direction == "worse"


def test_a_faster_build_is_significant_and_faster():
    faster = run(row("lab-single", [300, 305, 310], [2500, 2550, 2520]))
    assert verdicts(BASE, faster) == {"lab-single": FASTER}


def test_overlapping_rounds_are_no_clear_change():
    again = run(row("lab-single", [395, 420, 408], [1990, 2030, 1970]))
    assert verdicts(BASE, again) == {"lab-single": NO_CHANGE}


def test_disjoint_but_tiny_differences_are_within_the_noise():
    nudged = run(row("lab-single", [411, 412, 413], [2011, 2012, 2013]))  # +1.5% CPU, disjoint
    assert verdicts(BASE, nudged) == {"lab-single": NO_CHANGE}


@pytest.mark.parametrize("rounds", [1, 2])
def test_fewer_than_three_rounds_a_side_cannot_tell_even_when_far_apart(rounds: int):
    # two rounds: disjoint min..max intervals happen by chance a third of the time
    a = run(row("lab-single", [400, 401][:rounds], [2000, 2001][:rounds]))
    b = run(row("lab-single", [800, 801][:rounds], [1000, 1001][:rounds]))
    (d,) = bench_diff.pairs(a, b)
    assert d["verdict"] == f"{change.TOO_FEW} ({rounds} and {rounds})"
    assert d["significant"] is False and not any(c.significant for c in d["changes"].values())
    assert "No row to judge, fewer than 3 rounds: cannot tell" in bench_diff.text(("a", "b"), a, b)


def test_the_verdict_follows_cpu_per_request_not_either_metric():
    # req/s up 50% beyond the noise with the same CPU per request: the machine gave it more CPU
    more_cpu_time = run(row("lab-single", [401, 409, 404], [3000, 3050, 3020]))
    (d,) = bench_diff.pairs(BASE, more_cpu_time)
    assert d["changes"]["rps"].significant and d["verdict"] == NO_CHANGE


def test_a_target_in_one_run_only_is_left_out():
    assert verdicts(BASE, run(row("waitress", [600, 610, 620], [1000, 1010, 990]))) == {}


def test_goals_use_the_best_native_server_and_the_pairs():
    rows = {
        r.target: r
        for r in (
            row("lab-single", [500, 500, 500], [2000, 2000, 2000]),
            row("granian", [420, 420, 420], [3000, 3000, 3000]),
            row("uwsgi", [400, 400, 400], [2500, 2500, 2500]),
            row("lab-threaded", [600, 600, 600], [3100, 3100, 3100]),
            row("flask-dev", [900, 900, 900], [1000, 1000, 1000]),
        )
    }
    goals = {g["goal"]: g for g in check_goals(rows)}
    single = goals["lab-single CPU/req <= 1.25x best of granian/uwsgi"]
    assert single["ratio"] == pytest.approx(1.25) and single["verdict"] == "met"
    threaded = goals["lab-threaded req/s >= 3x flask-dev"]
    assert threaded["ratio"] == pytest.approx(3.1) and threaded["verdict"] == "met"
    assert goals["lab-forking req/s >= 1.2x gunicorn-sync-w2"]["verdict"] == "not measured"
    assert native_ratios(rows) == {"lab-single": 1.25, "lab-threaded": 1.5}


def test_a_missed_goal_says_missed():
    rows = {
        r.target: r for r in (row("lab-event", [700] * 3, [1100] * 3), row("waitress", [650] * 3, [1000] * 3))
    }
    event = next(g for g in check_goals(rows) if g["goal"].startswith("lab-event"))
    assert event["verdict"] == "MISSED" and event["ratio"] == pytest.approx(1.1)


def slowed_runs(tmp_path: Path, rounds: int = 3) -> tuple[Path, Path]:
    """Two bench runs on disk, B slowed by about 100 us per request."""
    a_cpu, b_cpu = [400, 410, 405][:rounds], [505, 512, 500][:rounds]
    base = run(row("lab-single", a_cpu, [2000, 1980, 2010][:rounds]))
    slowed = run(row("lab-single", b_cpu, [1650, 1640, 1660][:rounds]))
    bench.write_run(tmp_path / "a", base, {"kind": "bench"}, ["--rounds", str(rounds)])
    bench.write_run(tmp_path / "b", slowed, {"kind": "bench"}, ["--rounds", str(rounds), "--out", "x"])
    return tmp_path / "a", tmp_path / "b"


def test_python_m_loadtest_diff_judges_two_bench_runs(tmp_path: Path, capsys):
    a, b = slowed_runs(tmp_path)
    assert run_diff.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 rows with 3+ rounds on both sides changed significantly in CPU us/req" in out
    assert "| lab-single" in out and f"| {SLOWER}" in out
    assert (b / "bench-diff-vs-a.md").read_text() in out
    rerun = (b / "rerun.sh").read_text()
    assert "-m loadtest.bench --rounds 3 --out" in rerun and " x" not in rerun


def test_two_round_bench_runs_cannot_tell_through_diff_and_the_bench_alias(tmp_path: Path):
    a, b = slowed_runs(tmp_path, rounds=2)
    by_diff = run_module("loadtest.diff", str(a), str(b))
    by_alias = run_module("loadtest.bench", "--diff", str(a), str(b))
    for result in (by_diff, by_alias):
        assert result.returncode == 0, result.stderr
        assert "fewer than 3 rounds: cannot tell (2 and 2)" in result.stdout
        assert SLOWER not in result.stdout
    assert by_diff.stdout == by_alias.stdout


def test_a_bench_run_and_a_comparison_are_refused_in_one_line(tmp_path: Path):
    a, _ = slowed_runs(tmp_path)
    other = tmp_path / "c"
    other.mkdir()
    (other / records.SUMMARY).write_text('{"rows": []}')
    assert_one_line_error(run_module("loadtest.diff", str(a), str(other)), "cannot be paired")
    assert_one_line_error(run_module("loadtest.diff", str(tmp_path / "nothing"), str(a)), "no such directory")


def test_the_diff_warns_when_servers_that_are_not_ours_changed_too():
    base = run(row("waitress", [700, 705, 710], [1000, 1010, 990]), load=2.0)
    busy = run(row("waitress", [900, 910, 920], [700, 690, 710]), load=9.0)
    assert bench_diff.reference_moves(bench_diff.pairs(base, busy)) == ["waitress"]
    text = bench_diff.text(("a", "b"), base, busy)
    assert "caution: servers that are not ours changed too (waitress)" in text
    assert "(load 2.00-2.00 vs 9.00-9.00)" in text
    assert "caution" not in bench_diff.text(("a", "b"), BASE, BASE)
