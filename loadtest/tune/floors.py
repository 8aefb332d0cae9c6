"""What a figure that is a floor allows a sentence to say.  Pure.

A rate at the objectives is a *floor* when the ladder's top step passed or the
load generator was at its limit: the server could do more, by an unknown amount.
So a floor is never tied with a measured rate (one is known, the other is not);
a margin over a floor is a ceiling ("at most"), a floor's margin over a measured
rate a floor ("at least"), and two floors have no margin.  What stopped the
ladder is named (``Stop``), so the way to a real figure is the right one.
"""

from __future__ import annotations

from enum import StrEnum


class Stop(StrEnum):
    """Why a ladder that passed its top step was not extended further."""

    TIME_BUDGET = "time budget"
    GENERATOR = "generator"
    LADDER_TOP = "ladder top"


HINTS = {
    Stop.TIME_BUDGET: "the time budget ran out before a higher ladder (a larger --minutes measures further)",
    Stop.GENERATOR: (
        "the load generator was at its limit (--generator-workers N, or --expect-workers N from another "
        "machine, raises it)"
    ),
    Stop.LADDER_TOP: "every step passed up to the highest ladder tried (its top is the floor)",
}


def stopped_text(stop: Stop | None) -> str:
    """What stopped a floor's ladder, as a clause; "" for a measured rate."""
    return HINTS[stop] if stop is not None else ""


def may_tie(a_floor: bool, b_floor: bool) -> bool:
    """Two figures may be tied only when both are measured or both are floors."""
    return a_floor == b_floor


def margin_words(margin: float, rec_floor: bool, base_floor: bool) -> str | None:
    """'1.2x', 'at least 1.2x' or 'at most 1.2x'; None when both are floors (no margin can be read)."""
    if rec_floor and base_floor:
        return None
    if base_floor:
        return f"at most {margin:.1f}x"
    if rec_floor:
        return f"at least {margin:.1f}x"
    return f"{margin:.1f}x"
