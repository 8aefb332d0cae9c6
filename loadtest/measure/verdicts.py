"""The judgements about a run, each decided once: every view of a run imports them from here.

compare's result row, report.md/report.html, the diff and the soak report all say "machine busy"
or "generator saturated"; when each view decided for itself (``>`` in one, ``>=`` in another) two
views of one run could disagree.  Stated once:

- **machine busy** (``machine_busy``): the 1-minute load average recorded before or after a round
  was above ``BUSY_LOAD`` per core: the machine had more runnable work than cores.
- **busy with other work** (``busy_elsewhere``): every core at least ``BUSY_MACHINE`` busy (median
  over rounds) while server and generator used less and the row did not reach its ceiling.
- **generator saturated** (``generator_saturated``): in some round the busiest locust process used
  at least ``SATURATED`` of a core, or locust printed its own CPU warning; the figures are then
  a floor of what the server can do.
- **machine-bound** (``machine_bound``): server and generator together used at least
  ``MACHINE_BOUND`` of every core (median over rounds): the machine, not the server, set the figure.

Reads per-round records (dicts, as summary.json holds them); knows nothing of how a verdict is
worded in a document.  Standard library only.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from loadtest.measure.stats import number
from loadtest.registry.records import ComparisonRow

BUSY_LOAD = 1.0
BUSY_MACHINE = 0.9
SATURATED = 0.90
MACHINE_BOUND = 0.90


def loads(per_round: Sequence[dict]) -> list[float]:
    """The 1-minute load averages recorded before and after each round."""
    values = [number(r.get(k)) for r in per_round for k in ("load_before", "load_after")]
    return [v for v in values if v is not None]


def peak_load(per_round: Sequence[dict]) -> float | None:
    """The highest load average recorded around any of the rounds."""
    return max(loads(per_round), default=None)


def load_busy(load: float | None, cpu_count: float | None) -> bool:
    """Whether a load average means more runnable work than cores."""
    return load is not None and bool(cpu_count) and load > BUSY_LOAD * cpu_count


def machine_busy(per_round: Sequence[dict], cpu_count: float | None) -> bool:
    """Machine busy: the load average around some round was above ``BUSY_LOAD`` per core."""
    return load_busy(peak_load(per_round), cpu_count)


def ours_cores(record: dict) -> float:
    """Cores the server and the generator used together in one round."""
    return (number(record.get("server_cpu_cores")) or 0.0) + (number(record.get("generator_cores")) or 0.0)


def busy_elsewhere(row: ComparisonRow) -> tuple[float, float] | None:
    """(share of all cores in use, cores server + generator used) when other work held the machine, else None.

    None when the machine was not nearly full, when nothing of ours was measured, or when the row
    reached its ceiling (the machine did not hold it back).
    """
    machine = number(row.machine_cpu)
    if machine is None or machine < BUSY_MACHINE:
        return None
    if (number(row.io_efficiency) or 0.0) >= BUSY_MACHINE:
        return None
    ours = sorted(ours_cores(r) for r in row.per_round)
    return (machine, ours[len(ours) // 2]) if ours else None


def generator_saturated(rounds: Sequence[dict]) -> bool:
    """Generator saturated: its busiest process reached ``SATURATED`` of a core, or locust warned."""
    busiest = busiest_generator(rounds)
    return any(b >= SATURATED for b in busiest) or any(r.get("generator_warned") for r in rounds)


def busiest_generator(rounds: Sequence[dict]) -> list[float]:
    """The busiest locust process's share of a core, per round that recorded it."""
    return [r["generator_cpu"] for r in rounds if r.get("generator_cpu") is not None]


def machine_bound(rounds: Sequence[dict], cpu_count: float) -> bool:
    """Machine-bound: server + generator used ``MACHINE_BOUND`` of every core or more (median over rounds)."""
    used = [ours_cores(r) for r in rounds if isinstance(r.get("server_cpu_cores"), int | float)]
    return bool(used) and statistics.median(used) >= MACHINE_BOUND * cpu_count
