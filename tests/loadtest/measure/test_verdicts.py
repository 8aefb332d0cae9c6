""" "Machine busy" and "generator saturated" are decided once, so every view of one run agrees.

compare's row (``rows``), the report and the diff each word the verdict; the verdict itself is
``loadtest.measure.verdicts``'s. A load average exactly at the core count is the boundary the views
used to disagree on (``>`` in the row and the diff, ``>=`` in the report).
"""

from __future__ import annotations

import pytest

from loadtest.diff import main as diff
from loadtest.measure import rows, verdicts
from loadtest.registry.records import ComparisonRow
from loadtest.reporting import comparison
from tests.synthetic_runs import row


def views_say_busy(load_after: float) -> tuple[bool, bool, bool]:
    """(row's unstable reason, report's likely cause, diff's note) say "busy" for this load on 2 cores."""
    wobbly = row("io", "lab-threaded", [100.0, 150.0, 200.0], cpu_count=2)
    for r in wobbly["per_round"]:
        r["load_after"] = load_after
    record = rows.new(
        "io", "lab-threaded", 10, kind="local", url="", command="", explanation="",
        capacity=4, cpu_count=2, duration_s=5,
    )  # fmt: skip
    record.per_round = wobbly["per_round"]
    from_row = rows.unstable_reason(record, {"unstable": True})
    from_report = comparison.unstable_cause(ComparisonRow.from_dict(wobbly), 2)
    from_diff = diff.busy(ComparisonRow.from_dict(wobbly))
    return from_row.startswith("machine busy"), from_report.startswith("machine busy"), bool(from_diff)


@pytest.mark.parametrize(("load", "busy"), [(1.5, False), (2.0, False), (2.01, True), (9.1, True)])
def test_the_row_the_report_and_the_diff_agree_on_machine_busy(load, busy):
    assert views_say_busy(load) == (busy, busy, busy)


def test_generator_saturated_at_the_threshold_or_when_locust_warns():
    assert verdicts.generator_saturated([{"generator_cpu": verdicts.SATURATED}])
    assert not verdicts.generator_saturated([{"generator_cpu": verdicts.SATURATED - 0.01}])
    assert verdicts.generator_saturated([{"generator_cpu": 0.1, "generator_warned": True}])


def test_busy_elsewhere_needs_a_full_machine_that_held_the_row_back():
    ours = [{"server_cpu_cores": 0.7, "generator_cores": 0.5}]

    def busy(**figures) -> tuple[float, float] | None:
        return verdicts.busy_elsewhere(ComparisonRow("hello", "x", per_round=ours, **figures))

    assert busy(machine_cpu=0.99) == (0.99, pytest.approx(1.2))
    assert busy(machine_cpu=0.5) is None
    assert busy(machine_cpu=0.99, io_efficiency=0.95) is None
