"""make tune's arrival-rate steps as the per-request records name them: the marker and the name format."""

from __future__ import annotations

# make tune's open-loop generator (loadtest/generator/arrivals.py) names a record "s<step> __step__"
# at each step's start; the tune runner (loadtest/tune/ladder.py) slices the records by them.
STEP_MARKER = "__step__"


def step_name(step: int, what: str) -> str:
    """A record's name in a tune ladder: ``s<step> <path>`` (or ``s<step> __step__`` at a step's start)."""
    return f"s{step} {what}"


def parse_step_name(name: str) -> tuple[int, str] | None:
    """``s3 /a`` -> (3, "/a"); None for a name ``step_name`` did not make."""
    head, sep, what = name.partition(" ")
    if not sep or head[:1] != "s" or not head[1:].isdigit():
        return None
    return int(head[1:]), what
