"""A result row carries the median time inside the app, and its sentence is the report's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.measure import rounds, rows
from loadtest.registry.records import ComparisonRow
from loadtest.report import main as report


def hello_round(app_s: float, threads: int = 16, n: int = 4000, t0: float = 1000.0) -> list[dict]:
    """Sub-millisecond requests one after another over ``threads`` lanes, one closed loop per lane."""
    return [
        {
            "t": t0 + i * 0.0003,
            "ms": 0.25,
            "ok": True,
            "user": f"1.{i % threads}",
            "pid": "7",
            "thread": f"T{i % threads}",
            "start": t0 + i * 0.0003 + 0.00001,
            "end": t0 + i * 0.0003 + 0.00001 + app_s,
            "status": 200,
            "error": "",
        }
        for i in range(n)
    ]


def hello_row(app_seconds: list[float]) -> ComparisonRow:
    row = rows.new(
        "hello", "lab-threaded", 16, kind="local", url="http://127.0.0.1:1",
        command="", explanation="", capacity=16, cpu_count=2, duration_s=3,
    )  # fmt: skip
    for n, app_s in enumerate(app_seconds, 1):
        row.per_round.append({"round": n, "error": "", **rounds.figures(hello_round(app_s), warmup_s=0.0)})
    return rows.finish(row, sleep_s=0.5)


def test_the_row_carries_the_median_over_rounds_of_the_time_in_the_app():
    row = hello_row([0.00008, 0.00009, 0.00007])
    assert [r["app_ms_p50"] for r in row.per_round] == pytest.approx([0.08, 0.09, 0.07])
    assert row.app_ms_p50 == pytest.approx(0.08)
    assert "no overlap observed inside the app, where a request spends only 0.08 ms" in row.answer
    assert "waited in line" not in row.answer


def test_the_printed_sentence_is_the_reports(tmp_path):
    """compare prints the row's answer once rendered; the report reads the row's field, not the records."""
    row = hello_row([0.00008])
    printed = row.answer  # what compare prints at the end, built where the row is
    identity = tmp_path / "locust" / "hello" / "lab-threaded.r1.identity.jsonl"
    identity.parent.mkdir(parents=True)
    identity.write_text("".join(json.dumps(r) + "\n" for r in hello_round(0.00008)))
    row.identity_file = str(identity.relative_to(tmp_path))
    report.enrich(tmp_path, [row], 2)
    assert "a request spends only 0.08 ms" in printed and row.answer == printed


def test_a_row_written_before_rows_carried_it_takes_it_from_its_rounds(tmp_path):
    row = hello_row([0.00008]).as_dict()
    del row["app_ms_p50"]
    typed = ComparisonRow.from_dict(row)
    report.enrich(tmp_path, [typed], 2)
    assert typed.value("app_ms_p50") == pytest.approx(0.08) and "0.08 ms" in typed.answer


def io_row(rps: list[float]) -> ComparisonRow:
    row = rows.new(
        "io", "lab-forking", 10, kind="local", url="http://127.0.0.1:1",
        command="", explanation="", capacity=10, cpu_count=2, duration_s=3,
    )  # fmt: skip
    row.per_round = [{"round": n, "error": "", "rps": value} for n, value in enumerate(rps, 1)]
    return rows.finish(row, sleep_s=0.5)


def test_a_rate_above_the_models_ceiling_states_no_efficiency():
    """110% of 10 slots / 0.5 s, as a 3 s compose run once read: a bias, said as such."""
    over = io_row([22.1])
    assert over.io_efficiency is None and over.io_ceiling == pytest.approx(20.0)
    assert any("above the 20.0 req/s this model allows" in n for n in over.notes)
    assert "% of the" not in over.answer
    assert io_row([19.5]).io_efficiency == pytest.approx(0.975)


def test_a_fresh_row_writes_its_keys_where_summary_json_has_them():
    """A row finished today from the rounds of a real format-2 run lists summary.json's keys in its order."""
    written = json.loads((Path(__file__).parents[1] / "runs" / "format2" / "summary.json").read_text())
    for old in written["rows"]:
        row = rows.new(
            old["scenario"], old["target"], old["users"], kind=old["kind"], url=old["url"],
            command=old["command"], explanation=old["explanation"], capacity=old["capacity"],
            cpu_count=old["cpu_count"], duration_s=old["duration_s"],
        )  # fmt: skip
        row.per_round = old["per_round"]
        assert list(rows.finish(row, sleep_s=0.5).as_dict()) == list(old)
        assert row.errors == old["errors"] and row.latency_source == old["latency_source"]
