"""Whether the local load generator shares the server's cores, and how every figure says so.  Pure.

With ``--cpus`` covering every core of the machine, the server is pinned to (or its
quota allows) every core and the one locust process on this machine runs on the
same cores: a step that fails may have failed because the *machine* was full, and
every rate measured is the server's share of a machine it shared with its load.
Tune says so before it starts, says after how much of a core the generator used,
marks each figure (headline, tables, ``recommendation.json``) and names the ways
out.  Workers from elsewhere (``--expect-workers``) leave only the master here,
which sends no request: nothing is shared then.

What this module does not know: how the generator's CPU is measured (``trial``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MARK = "the server's share of a machine shared with the load generator"
WAYS_OUT = (
    "a smaller --cpus (the generator then runs on the cores left), --runtime docker with a CPU quota "
    "below the machine's cores, or --expect-workers N with locust workers on another machine"
)


def machine_cores() -> int:
    """The cores this process may use: the machine as tune sees it."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Sharing:
    """What the generator shared with the server in one run."""

    shared: bool
    cpus: float  # the budget's cores
    cores: int  # the machine's (this process's) cores

    @classmethod
    def of(cls, cpus: float, expect_workers: int, cores: int | None = None) -> Sharing:
        cores = machine_cores() if cores is None else cores
        return cls(shared=expect_workers == 0 and cpus >= cores, cpus=cpus, cores=cores)

    def before(self) -> str:
        """The warning printed before the run starts; "" when nothing is shared."""
        if not self.shared:
            return ""
        return (
            f"the local load generator will compete with the server: --cpus {self.cpus:g} is every core of "
            f"this machine ({self.cores}), so every figure will be {MARK}. Ways out: {WAYS_OUT}"
        )

    def mark(self, text: str) -> str:
        """``text`` with the mark appended when shared: '2,886 req/s (the server's share ...)'."""
        return f"{text} ({MARK})" if self.shared else text

    def after(self, busiest_share: float | None, at_rate: float | None) -> str:
        """What the generator used, measured, for the headline and the method; "" when nothing is shared."""
        if not self.shared:
            return ""
        used = (
            f"its busiest locust process used up to {busiest_share:.0%} of a core"
            + (f" (at {at_rate:,.0f} req/s offered)" if at_rate else "")
            if busiest_share is not None
            else "its CPU was not measured"
        )
        return (
            f"The load generator ran on the server's {self.cores} cores: {used}, so every rate here is "
            f"{MARK}. Ways out: {WAYS_OUT}."
        )

    def as_dict(self) -> dict:
        return {"shared": self.shared, "cpus": self.cpus, "machine_cores": self.cores}
