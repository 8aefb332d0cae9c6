"""make tune's arrival-rate steps as the per-request records name them."""

from __future__ import annotations

# make tune's open-loop generator (loadtest/generator/arrivals.py) names a record "s<step> __step__"
# at each step's start; the tune runner (loadtest/tune/ladder.py) slices the records by them.
STEP_MARKER = "__step__"
