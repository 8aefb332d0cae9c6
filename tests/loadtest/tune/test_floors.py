"""A floor's words: never a tie with a measured rate, "at most" over a floor, the stop named (synthetic)."""

from __future__ import annotations

import pytest

from loadtest.tune.floors import Stop, margin_words, may_tie, stopped_text


@pytest.mark.parametrize(("a", "b", "tie"), [(False, False, True), (True, True, True), (True, False, False)])
def test_a_floor_is_never_tied_with_a_measured_rate(a, b, tie):
    assert may_tie(a, b) is tie and may_tie(b, a) is tie


def test_a_margin_over_a_floor_is_at_most_and_a_floors_margin_at_least():
    assert margin_words(1.16, rec_floor=False, base_floor=True) == "at most 1.2x"
    assert margin_words(35.4, rec_floor=True, base_floor=False) == "at least 35.4x"
    assert margin_words(1.16, rec_floor=False, base_floor=False) == "1.2x"
    assert margin_words(2.0, rec_floor=True, base_floor=True) is None


def test_each_stop_names_its_own_way_out():
    assert "--minutes" in stopped_text(Stop.TIME_BUDGET) and "generator" not in stopped_text(Stop.TIME_BUDGET)
    assert "--generator-workers" in stopped_text(Stop.GENERATOR)
    assert "--generator-workers" not in stopped_text(Stop.LADDER_TOP)
    assert stopped_text(None) == ""
