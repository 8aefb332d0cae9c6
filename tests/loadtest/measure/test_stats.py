"""Statistics over rounds on known samples: percentiles by hand, intervals, stability, significance."""

from __future__ import annotations

import statistics

import pytest

from loadtest.measure import stats


def test_percentile_interpolates_linearly_between_order_statistics():
    values = [15, 20, 35, 40, 50]
    # position (n-1)*q/100: q=40 -> 1.6 -> 20 + 0.6*(35-20) = 29
    assert stats.percentile(values, 40) == pytest.approx(29.0)
    assert stats.percentile(values, 0) == 15
    assert stats.percentile(values, 100) == 50
    assert stats.percentile(values, 50) == 35
    # unsorted input, q=95 on 1..10: position 8.55 -> 9 + 0.55*(10-9)
    assert stats.percentile([10, 1, 9, 2, 8, 3, 7, 4, 6, 5], 95) == pytest.approx(9.55)
    assert stats.percentile([4.2], 99) == 4.2


def test_percentile_of_nothing_is_none_and_q_out_of_range_is_an_error():
    assert stats.percentile([], 50) is None
    with pytest.raises(ValueError, match="q must be in"):
        stats.percentile([1, 2], 101)


def test_small_samples_get_min_to_max_with_its_stated_coverage():
    assert stats.bootstrap_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert stats.bootstrap_ci([7.5]) == (7.5, 7.5)
    assert stats.bootstrap_ci([]) is None
    assert stats.coverage(3) == pytest.approx(0.75)
    assert stats.coverage(5) == pytest.approx(0.9375)
    assert stats.coverage(1) == 0.0
    assert stats.coverage(20) == 0.95


def test_bootstrap_is_deterministic_per_seed_and_contains_the_median():
    values = [100, 104, 98, 101, 97, 130, 99, 102, 103, 96, 100, 95]
    first = stats.bootstrap_ci(values, seed=7)
    assert first == stats.bootstrap_ci(values, seed=7)
    low, high = first
    assert low <= statistics.median(values) <= high
    # narrower than the full range: the outlier 130 is not the bound of a median's interval
    assert min(values) <= low and high < 130


def test_summarize_ignores_missing_values_and_reports_intervals():
    per_round = [
        {"rps": 100.0, "p95_ms": 10.0, "server_cpu_cores": None},
        {"rps": 102.0, "p95_ms": 10.5, "server_cpu_cores": None},
        {"rps": 101.0, "p95_ms": None, "server_cpu_cores": None},
    ]
    out = stats.summarize(per_round, ("rps", "p95_ms", "server_cpu_cores", "server_mem_mb"))
    assert out["rps"] == 101.0 and out["rps_ci95"] == [100.0, 102.0]
    assert out["p95_ms"] == pytest.approx(10.25) and out["p95_ms_ci95"] == [10.0, 10.5]
    assert out["server_cpu_cores"] is None and out["server_cpu_cores_ci95"] is None
    assert "server_mem_mb" not in out  # absent from every round: not invented
    assert out["unstable"] is False and out["unstable_metrics"] == []


def test_summarize_flags_a_spread_wider_than_ten_percent_of_the_median():
    per_round = [{"rps": 100.0, "p50_ms": 5.0}, {"rps": 125.0, "p50_ms": 5.1}, {"rps": 110.0, "p50_ms": 5.2}]
    out = stats.summarize(per_round)
    assert out["unstable"] is True and out["unstable_metrics"] == ["rps"]
    # generator CPU varies without making the figures less trustworthy
    calm = stats.summarize([{"rps": 100.0, "generator_cpu": 0.2}, {"rps": 101.0, "generator_cpu": 0.6}])
    assert calm["unstable"] is False


def test_overlap_and_significance():
    assert stats.overlap([1, 2], [2, 3]) is True
    assert stats.overlap([1, 2], [2.1, 3]) is False
    assert stats.overlap(None, [1, 2]) is True
    assert stats.significant([1, 2], [2.1, 3]) is True
    assert stats.significant([1, 2], [1.5, 3]) is False
    assert stats.significant(None, [5, 6]) is False


def test_chance_that_unchanged_runs_get_disjoint_min_max_intervals():
    assert stats.chance_disjoint(3, 3) == pytest.approx(2 / 20)
    assert stats.chance_disjoint(2, 2) == pytest.approx(1 / 3)
    assert stats.chance_disjoint(1, 1) == 1.0  # two single points never overlap unless equal
    assert stats.chance_disjoint(3, 8) is None  # a bootstrap interval: no closed form here


def test_spreads_of_near_zero_figures_are_measured_against_a_floor():
    # an io server's CPU: 0.01 vs 0.02 cores is no instability
    idle = stats.summarize(
        [{"server_cpu_cores": 0.01}, {"server_cpu_cores": 0.02}, {"server_cpu_cores": 0.015}]
    )
    assert idle["unstable"] is False
    busy = stats.summarize([{"server_cpu_cores": 0.8}, {"server_cpu_cores": 1.0}, {"server_cpu_cores": 0.9}])
    assert busy["unstable_metrics"] == ["server_cpu_cores"]
    assert stats.exceeds("server_cpu_cores", 0.04, 0.01, 0.10) is False
    assert stats.exceeds("server_cpu_cores", 0.2, 0.9, 0.10) is True
    assert stats.exceeds("rps", 0.2, 1.0, 0.10) is True  # no floor for throughput
