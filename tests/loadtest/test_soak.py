"""The soak tool: its verdict rule without load, and a few seconds of real load on one mode.

``make soak`` runs minutes per mode and is not part of CI; the short run here
keeps the tool (locust, the sampler, the report and the plot) from rotting.
"""

from __future__ import annotations

import csv

import pytest

from loadtest.run import locustrun
from loadtest.soak import main as soak
from loadtest.soak.main import MB, Sample, judge


def samples(rss_mb, fds, n: int = 40) -> list[Sample]:
    """``n`` samples a second apart; ``rss_mb`` and ``fds`` are functions of the sample's index."""
    return [Sample(float(i), int(rss_mb(i) * MB), int(rss_mb(i) * MB * 0.7), fds(i), 1) for i in range(n)]


def test_flat_memory_and_fds_without_failures_meet_the_goal():
    verdict = judge(samples(lambda i: 50 + (i % 3) * 0.1, lambda i: 20), failures=0, requests=1000)
    assert verdict.met and verdict.reasons == []
    assert verdict.rss_first == pytest.approx(50.1, abs=0.2) and verdict.fds_last == 20


def test_warm_up_growth_does_not_count():
    verdict = judge(samples(lambda i: 20 + 3 * i if i < 5 else 40, lambda i: 20), failures=0, requests=1000)
    assert verdict.met, verdict.reasons


def test_memory_growing_past_the_limit_misses_the_goal():
    verdict = judge(samples(lambda i: 50 + i, lambda i: 20), failures=0, requests=1000)
    assert not verdict.met and "RSS grew" in verdict.reasons[0]
    assert verdict.rss_growth > soak.RSS_GROWTH_LIMIT


def test_fds_that_keep_rising_miss_the_goal():
    verdict = judge(samples(lambda i: 50, lambda i: 20 + i), failures=0, requests=1000)
    assert not verdict.met and verdict.reasons == ["fds rose from at most 31 to 57.5"]


def test_failures_or_no_requests_miss_the_goal():
    flat = samples(lambda i: 50, lambda i: 20)
    assert judge(flat, failures=3, requests=1000).reasons == ["3 failed requests"]
    assert judge(flat, failures=0, requests=0).reasons == ["no requests were made"]
    assert judge(flat[:4], failures=0, requests=1000).reasons == ["too few samples to judge"]


def test_an_unknown_mode_is_refused_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        soak.parse_args(["--modes", "threaded,nonesuch"])
    assert exit_.value.code == 2
    assert "unknown mode(s) nonesuch" in capsys.readouterr().err


@pytest.mark.slow
def test_a_short_soak_of_one_mode_measures_and_reports(tmp_path):
    code = soak.main(
        ["--minutes", "0.15", "--modes", "threaded", "--interval", "0.5", "--out", str(tmp_path)]
    )
    assert code in (0, 1)  # met or missed is the machine's business; the figures must be there
    stats = locustrun.read_aggregated(tmp_path / "threaded_stats.csv")
    assert int(stats["Request Count"]) > 0 and int(stats["Failure Count"]) == 0
    with (tmp_path / "threaded.samples.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 5 and all(int(r["rss_bytes"]) > 0 and int(r["fds"]) > 0 for r in rows)
    assert float(rows[0]["seconds"]) >= 0 and float(rows[-1]["seconds"]) <= 0.15 * 60
    report = (tmp_path / "report.md").read_text()
    assert f"| threaded | {stats['Request Count']} | 0 |" in report
    assert (tmp_path / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
