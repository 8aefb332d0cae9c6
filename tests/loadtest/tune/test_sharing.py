"""The generator-shares-the-cores decision and its words (synthetic: it is a decision)."""

from __future__ import annotations

import pytest

from loadtest.tune.sharing import MARK, WAYS_OUT, Sharing


@pytest.mark.parametrize(
    ("cpus", "expect", "cores", "shared"),
    [
        (2, 0, 2, True),
        (2.0, 0, 2, True),
        (1, 0, 2, False),
        (1.5, 0, 2, False),
        (2, 3, 2, False),
        (4, 0, 2, True),
    ],
)
def test_shared_when_the_budget_covers_every_core_and_the_generator_is_here(cpus, expect, cores, shared):
    assert Sharing.of(cpus, expect, cores).shared is shared


def test_a_shared_run_warns_before_marks_each_figure_and_says_what_the_generator_used():
    s = Sharing.of(2, 0, 2)
    assert "--cpus 2 is every core" in s.before() and WAYS_OUT in s.before()
    assert s.mark("2,886 req/s") == f"2,886 req/s ({MARK})"
    after = s.after(0.85, 3362)
    assert "85% of a core" in after and "3,362 req/s offered" in after and MARK in after
    assert "--expect-workers" in after and "--runtime docker" in after and "smaller --cpus" in after
    assert s.as_dict() == {"shared": True, "cpus": 2, "machine_cores": 2}


def test_nothing_is_said_or_marked_when_the_generator_has_cores_of_its_own():
    s = Sharing.of(1, 0, 2)
    assert s.before() == "" and s.after(0.4, 100) == "" and s.mark("10 req/s") == "10 req/s"
