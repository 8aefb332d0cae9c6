"""Whether the app's requests wait inside it for something they share (a connection pool, a lock).  Pure.

Calibration measures the app's mean time per request alone, at low rates
(``Calibration.wall_s``).  A measured step whose mean time *inside the app* (the
identity headers: queueing in the server's socket does not count) is ``GROWTH``
times that or more, on an app that mostly waits (``io_share`` at least ``IO_BOUND``)
and below the cores' CPU rate (``CPU_ROOM``: not the GIL or a full core), means the
requests in flight wait inside the app for one another: a connection pool, a lock,
a rate-limited backend.  More threads or greenlets there add waiting, not capacity;
``--max-in-flight`` gives tune that limit.  The step with the largest growth is named,
with its failed answers (a pool's timeouts answer 503).
What this module does not know: what the shared thing is (the app does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from loadtest.tune.calibrate import Calibration
from loadtest.tune.candidate import Candidate

GROWTH = 3.0
IO_BOUND = 0.5
CPU_ROOM = 0.8  # a step above this share of the cores' CPU rate may wait for a core, not a shared thing


@dataclass(frozen=True)
class SharedWait:
    key: str  # the shape
    slots: int | None  # its requests in flight (None: one per connection)
    rate: float  # the step's offered rate, req/s
    app_ms: float  # mean time inside the app at that step
    alone_ms: float  # mean time inside the app alone (calibration)
    failed: dict[str, int] = field(default_factory=dict)

    def sentence(self, max_in_flight: int | None) -> str:
        slots = "a greenlet or thread per connection" if self.slots is None else f"{self.slots} in flight"
        errors = ", ".join(f"{n} x {what}" for what, n in sorted(self.failed.items(), key=lambda x: -x[1]))
        limit = (
            f"the shapes were held to --max-in-flight {max_in_flight}"
            if max_in_flight
            else "give that limit with --max-in-flight N (e.g. the pool's connections)"
        )
        return (
            f"something the app's requests share: on {self.key} ({slots}) at {self.rate:g} req/s each "
            f"request spent {self.app_ms:.0f} ms inside the app against {self.alone_ms:.0f} ms alone"
            + (f", and answers failed ({errors})" if errors else "")
            + f" -- they wait inside the app for each other (a connection pool, a lock); {limit}"
        )

    def as_dict(self) -> dict:
        return {"shape": self.key, "slots": self.slots, "rate": self.rate, "app_ms": self.app_ms,
                "alone_ms": self.alone_ms, "failed": self.failed}  # fmt: skip


def shared_wait(cal: Calibration, cands: Sequence[Candidate], cpus: float) -> SharedWait | None:
    """The measured step where the app's own time grew most over its time alone, if ``GROWTH`` or more."""
    alone_ms = cal.wall_s * 1000.0
    if cal.io_share < IO_BOUND or alone_ms <= 0:
        return None
    cpu_rate = cpus / max(cal.cpu_s, 1e-9)
    best: SharedWait | None = None
    for c in cands:
        for r in c.rounds:
            for step in r.steps:
                if step.app_ms is None or step.rate > CPU_ROOM * cpu_rate or step.app_ms < GROWTH * alone_ms:
                    continue
                if best is None or step.app_ms > best.app_ms:
                    failed = dict(step.failed)
                    best = SharedWait(c.key, c.shape.slots, step.rate, step.app_ms, alone_ms, failed)
    return best
