"""loadtest.registry.records: each run file read into its record, written back with its format; old ones load.

Old-format directories are built the way older code wrote them (``tests/synthetic_runs.py``:
format 1 has no ``format`` key; rows from before rounds have no ``per_round`` or intervals).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from loadtest.registry import records
from loadtest.registry.records import ComparisonRow, RunError
from tests.support import RECOMMENDATION_KEYS, assert_one_line_error, run_module
from tests.synthetic_runs import env, old_row, row, write_run


def test_a_format_1_comparison_loads_typed(tmp_path: Path):
    run = write_run(tmp_path / "run", [row("io", "lab-threaded", [19.0, 19.5, 19.8], surprise="kept")])
    assert "format" not in json.loads((run / records.SUMMARY).read_text())
    summary = records.load_summary(run)
    (r,) = summary.rows
    assert summary.format == 1 and summary.parameters == env()["parameters"]
    assert r.key == ("io", "lab-threaded", 10) and r.round_count == 3 and len(r.per_round) == 3
    assert r.value("rps") == 19.5 and r.interval("rps") == (19.0, 19.8)
    assert r.extra["surprise"] == "kept" and not r.unstable
    environment = records.load_env(run)
    assert environment.cpu_count == 2 and environment.seed == 7 and environment.extra["rerun"] == "./rerun.sh"


def test_a_row_from_before_rounds_is_one_round_without_an_interval_and_its_identity_file(tmp_path: Path):
    run = write_run(tmp_path / "old", [old_row("io", "lab-single", 1.9)])
    (r,) = records.load_summary(run).rows
    assert r.round_count == 1 and r.per_round == [] and r.value("rps") == 1.9 and r.interval("rps") is None
    assert records.identity_path(run, r) == run / "locust" / "io" / "lab-single.identity.jsonl"


def test_a_row_names_what_its_readers_use_and_says_none_where_an_old_row_recorded_nothing(tmp_path: Path):
    run = write_run(
        tmp_path / "run", [row("io", "x", [9.0, 10.0, 11.0], io_efficiency=0.5), old_row("io", "y", 2.0)]
    )
    new, old = records.load_summary(run).rows
    assert new.pids == 1 and new.threads == 4 and new.with_identity == new.requests and new.capacity == 4
    assert new.machine_bound is False and new.machine_cpu == 0.4 and new.io_efficiency == 0.5
    assert new.errors["non_2xx"] == 0 and new.little["in_flight_measured"] == 4.0
    assert "pids" not in new.extra and "rps" in new.extra  # named fields are typed; medians stay figures
    # a row from before rounds: no machine verdict, no interpreter, no error split -- not "False" or "0"
    assert (
        old.machine_bound is None and old.machine_cpu is None and old.interpreter == {} and old.errors == {}
    )
    assert old.app_ms_p50 is None and old.value("app_ms_p50") is None and old.value("max_in_flight") == 1.0
    failed = ComparisonRow.from_dict({"scenario": "io", "target": "z", "error": "boom"})
    assert failed.pids is None and failed.with_identity is None and failed.value("rps") is None


def test_slow_rows_load_typed_and_write_back_as_a_list(tmp_path: Path):
    peak = {"processes": 1, "threads": 9, "connections": 21}
    written = [
        {"target": "a", "slow_clients": 20, "success_rate": 1.0, "first_success_s": 0.1, "peak": peak},
        {"target": "b", "slow_clients": 20, "error": "failed to start: boom", "surprise": 1},
    ]
    (tmp_path / records.SLOW).write_text(json.dumps(written))
    a, b = records.load_slow(tmp_path)
    assert (
        a.success_rate == 1.0 and a.peak == {"processes": 1, "threads": 9, "connections": 21} and not a.error
    )
    assert b.error == "failed to start: boom" and b.success_rate is None and b.extra == {"surprise": 1}
    records.write_slow(tmp_path / "again", [a, b])
    assert records.load_slow(tmp_path / "again") == [a, b]
    (tmp_path / records.SLOW).write_text(json.dumps({"rows": written}))
    with pytest.raises(RunError, match="not a list of rows"):
        records.load_slow(tmp_path)


def test_a_failed_row_has_no_interval_and_a_per_round_identity_file_is_found(tmp_path: Path):
    r = ComparisonRow.from_dict(row("cpu", "x", [5.0, 6.0, 7.0], error="boom"))
    assert r.failed == "boom" and r.interval("rps") is None and r.value("rps") == 6.0
    r.per_round[-1]["identity_file"] = "locust/cpu/x.r3.identity.jsonl"
    assert records.identity_path(tmp_path, r) == tmp_path / "locust/cpu/x.r3.identity.jsonl"


def test_what_is_written_carries_the_format_and_reads_back_the_same(tmp_path: Path):
    summary = records.load_summary(
        write_run(tmp_path / "a", [row("io", "x", [1.0, 2.0, 3.0], extra_key=[1])])
    )
    records.write_summary(tmp_path / "b", summary)
    written = json.loads((tmp_path / "b" / records.SUMMARY).read_text())
    assert written["format"] == records.FORMAT_VERSION and written["rows"][0]["extra_key"] == [1]
    again = records.load_summary(tmp_path / "b")
    assert again.format == records.FORMAT_VERSION and again.rows == summary.rows
    records.write_env(tmp_path / "b", records.load_env(tmp_path / "a"))
    assert records.load_env(tmp_path / "b").as_dict() == {**env(), "format": records.FORMAT_VERSION}


def test_a_newer_format_is_refused_in_one_line(tmp_path: Path):
    good = write_run(tmp_path / "good", [row("io", "x", [1.0, 1.0, 1.0])])
    newer = write_run(tmp_path / "newer", [row("io", "x", [1.0, 1.0, 1.0])])
    (newer / records.SUMMARY).write_text(json.dumps({"format": records.FORMAT_VERSION + 1, "rows": []}))
    with pytest.raises(RunError, match="is newer than this wsgi-lab reads"):
        records.load_summary(newer)
    assert_one_line_error(run_module("loadtest.diff", str(newer), str(good)), "newer", str(newer))
    assert_one_line_error(run_module("loadtest.report", str(newer)), "newer", str(newer))


def test_a_row_without_its_names_is_not_a_record(tmp_path: Path):
    broken = write_run(tmp_path / "broken", [{"rps": 3.0}])
    with pytest.raises(RunError, match="not a Summary record"):
        records.load_summary(broken)


BENCH_V1 = {  # bench.json as main wrote it up to format 2 (no "format" key)
    "kind": "bench",
    "parameters": {
        "duration": 5,
        "connections": 16,
        "threads": 1,
        "rounds": 3,
        "warmup": 1,
        "app": "app:app",
    },
    "load_before": 0.4,
    "load_after": 0.6,
    "rows": [
        {
            "target": "lab-single",
            "explanation": "our server, one thread",
            "command_args": ["--mode", "single"],
            "per_round": [
                {"rps": 1500.0, "cpu_us": 600.0, "requests": 7500, "errors": ""},
                {"rps": None, "cpu_us": None, "requests": 0, "errors": "FAILED: boom"},
                {"rps": 1520.0, "cpu_us": 590.0, "requests": 7600, "errors": ""},
            ],
            "failed": "FAILED: boom",
            "rps": 1510.0,
            "cpu_us": 595.0,
            "rps_ci95": [1500.0, 1520.0],
            "cpu_us_ci95": [590.0, 600.0],
        }
    ],
    "goals": [{"goal": "lab-single CPU/req <= 1.25x best of granian/uwsgi", "ratio": None, "verdict": "x"}],
    "native_cpu_ratio": {},
}


def test_a_format_1_bench_run_loads_typed_and_counts_only_measured_rounds(tmp_path: Path):
    (tmp_path / records.BENCH).write_text(json.dumps(BENCH_V1))
    run = records.load_bench(tmp_path)
    (r,) = run.rows
    assert run.format == 1 and run.parameters.connections == 16 and run.load_after == 0.6
    assert r.round_count == 2 and r.per_round[1].errors == "FAILED: boom"
    assert r.value("cpu_us") == 595.0 and r.interval("cpu_us") == (590.0, 600.0)
    assert records.kind_of(tmp_path) == "bench"
    records.write_bench(tmp_path / "again", run)
    assert records.load_bench(tmp_path / "again").as_dict() == {**BENCH_V1, "format": records.FORMAT_VERSION}


def configuration(**extra) -> dict:
    return {
        "key": "gunicorn-gthread/2x8",
        "target": "gunicorn-gthread",
        "server": "gunicorn",
        "worker_class": "gthread",
        "workers": 2,
        "threads": 8,
        "command": "gunicorn -w 2 --threads 8 app:app",
        "rate_at_slo": 120.0,
        "rate_at_slo_interval": [110.0, 130.0],
        "rounds": 2,
        "p95_ms": 150.0,
        "p99_ms": 190.0,
        "memory_mb": 140.0,
        "fits_memory": True,
        "cpus": 2,
        **extra,
    }


RECOMMENDATION_V1 = {  # recommendation.json as make tune writes it today (loadtest/tune/record.py)
    "headline": ["Run gunicorn gthread, 2 workers x 8 threads."],
    "recommended": configuration(),
    "baseline": configuration(key="gunicorn-sync/5x1", worker_class="sync", workers=5, threads=1),
    "margin": 3.1,
    "within_intervals": False,
    "why": "the app waits",
    "binding": "",
    "app": "app:app",
    "workload": "paths",
    "paths": [{"path": "/sleep?s=0.05", "weight": 1.0}],
    "locustfile": None,
    "slo": {"p95_ms": 200.0},
    "max_error_rate": 0.01,
    "budget": {"cpus": 2, "cpus_source": "test", "memory_mb": 1024.0, "memory_source": "test"},
    "calibration": {"cpu_ms": 2.0, "app_ms": 52.0, "io_share": 0.96},
    "minutes": 8.0,
    "wall_s": 400.0,
    "seed": 1,
    "load_average": {"before": 0.5, "after": 0.7},
    "candidates": [{"key": "gunicorn-gthread/2x8", "status": "measured", "why": ""}],
}


def test_a_recommendation_loads_typed_and_keeps_fields_it_does_not_name(tmp_path: Path):
    newer = json.loads(json.dumps(RECOMMENDATION_V1))
    newer["calibration"]["app_ms_mean"] = 51.0  # fields tune may add: kept, never in the way
    newer["recommended"]["rate_at_slo_lower_bound"] = 100.0
    newer["generator_limit_rps"] = 900.0
    (tmp_path / records.RECOMMENDATION).write_text(json.dumps(newer))
    rec = records.load_recommendation(tmp_path)
    assert (
        rec.recommended is not None and rec.recommended.workers == 2 and rec.baseline.worker_class == "sync"
    )
    assert all(hasattr(rec.baseline, k) for k in RECOMMENDATION_KEYS)
    assert (
        rec.recommended.extra == {"rate_at_slo_lower_bound": 100.0} and rec.calibration["app_ms_mean"] == 51.0
    )
    records.write_recommendation(tmp_path / "again", rec)
    assert records.load_recommendation(tmp_path / "again").as_dict() == {
        **newer,
        "format": records.FORMAT_VERSION,
    }


def test_a_fleet_plan_loads_typed_and_a_file_without_one_still_loads(tmp_path: Path):
    from loadtest.tune import fleet

    replica = fleet.Replica("gunicorn gthread -w 2 --threads 8", 640.0, (600.0, 660.0), False, 1.6, 2.0)
    plan = fleet.plan(2000, replica, slo="p95 <= 200 ms").as_dict()
    (tmp_path / records.RECOMMENDATION).write_text(json.dumps({**RECOMMENDATION_V1, "fleet": plan}))
    rec = records.load_recommendation(tmp_path)
    assert isinstance(rec.fleet, records.Fleet) and rec.fleet.replicas == 5 and rec.fleet.extra == {}
    assert rec.fleet.replica["interval"] == [600.0, 660.0]
    records.write_recommendation(tmp_path / "again", rec)
    assert records.load_recommendation(tmp_path / "again").as_dict()["fleet"] == plan
    (tmp_path / records.RECOMMENDATION).write_text(json.dumps(RECOMMENDATION_V1))
    assert records.load_recommendation(tmp_path).fleet is None


def test_nothing_recommended_loads_too(tmp_path: Path):
    (tmp_path / records.RECOMMENDATION).write_text(json.dumps({**RECOMMENDATION_V1, "recommended": None}))
    assert records.load_recommendation(tmp_path).recommended is None
    assert records.kind_of(tmp_path) == "tune"


def test_the_report_rerenders_a_format_1_run_and_writes_format_2(tmp_path: Path):
    run = write_run(
        tmp_path / "run", [row("io", "lab-threaded", [19.0, 19.5, 19.8]), old_row("io", "x", 2.0)]
    )
    before = records.load_summary(run)
    result = run_module("loadtest.report", str(run))
    assert result.returncode == 0, result.stderr
    after = records.load_summary(run)
    assert after.format == records.FORMAT_VERSION and records.load_env(run).format == 1
    assert [(r.key, r.value("rps"), r.interval("rps")) for r in after.rows] == [
        (r.key, r.value("rps"), r.interval("rps")) for r in before.rows
    ]


RUNS = Path(__file__).parent / "runs"
IMAGES = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


@pytest.mark.parametrize("fmt", ["format1", "format2"])
def test_a_real_run_rerenders_byte_identically(tmp_path: Path, fmt: str):
    """Two runs written by ``python -m loadtest.compare`` itself (io, lab-single and lab-threaded, 4 users,
    2 rounds of 3 s, seed 1): format 1 by the code of b385879~1, format 2 by 9c440e0. ``expected/`` is
    what that code's ``python -m loadtest.report`` wrote from them; today's must write the same bytes
    (the HTML's embedded charts aside: their pixels are matplotlib's)."""
    run = tmp_path / fmt
    shutil.copytree(RUNS / fmt, run, ignore=shutil.ignore_patterns("expected"))
    result = run_module("loadtest.report", str(run))
    assert result.returncode == 0, result.stderr
    expected = RUNS / fmt / "expected"
    for name in ("summary.json", "summary.csv", "report.md"):
        assert (run / name).read_bytes() == (expected / name).read_bytes(), name
    html = IMAGES.sub("data:image/png;base64,...", (run / "report.html").read_text(encoding="utf-8"))
    assert html == (expected / "report.html").read_text(encoding="utf-8")
    unchanged = (run / "summary.json").read_bytes() == (RUNS / fmt / "summary.json").read_bytes()
    assert unchanged is (fmt == "format2")  # a format-1 file is written back as format 2
