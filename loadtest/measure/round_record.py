"""One comparison round's record: its figures, from our per-request records or locust's buckets.

``fill`` writes into the per-round dict ``compare`` keeps for each (scenario, target, users,
round): the window's figures (``rounds.figures``), the server's CPU and memory (psutil for a
local tree, ``/_lab/usage`` for ``--hosts``), the generator's and the machine's CPU. It knows
nothing of how locust was started (``run/``): it reads the finished run through ``LoadRun``.
"""

from __future__ import annotations

from typing import Protocol

from loadtest.inserver import usage
from loadtest.inserver.usage import USAGE_PATH
from loadtest.measure import rounds
from loadtest.measure.cpuwatch import Watch

EXACT = "exact: per-request records"
BUCKETS = "locust response-time buckets (rounded)"


class LoadRun(Protocol):
    """What a finished locust run left (``run.locustrun.LocustRun``)."""

    records: list[dict]
    stats: dict  # locust's "Aggregated" row of <stem>_stats.csv
    log_tail: str
    warned: bool
    watch: Watch
    processes: int


def num(value, cast=float):
    """A cell of locust's CSV as a number; None when empty or not a number."""
    try:
        return cast(value)
    except (TypeError, ValueError):
        return None


def server_usage(record: dict, watch: Watch | None, before: dict | None, after: dict | None, span) -> None:
    """server_cpu_cores, server_mem_mb and cpu_limit of one run, from psutil locally or /_lab/usage."""
    if watch is not None:
        record["server_cpu_cores"] = watch.cores(span[0], span[1])
        mem, kind = watch.peak_memory(span[0], span[1])
        record["cpu_limit"] = usage.cgroup_cpu_limit()
    elif before and after and usage.cpu_used(before, after) is not None:
        used, load_span = usage.cpu_used(before, after), span[2]
        record["server_cpu_cores"] = used / load_span if used is not None and load_span else None
        mem, kind = after.get("memory_bytes"), after.get("memory_kind", "")
        record["cpu_limit"] = after.get("cgroup_cpu_limit")
    else:
        record["server_cpu_cores"] = None
        record["usage_note"] = f"server CPU/memory not measured: no {USAGE_PATH} at the host"
        mem, kind = None, ""
    record["server_mem_mb"] = mem / 2**20 if mem else None
    record["server_mem_kind"] = kind


def fill(record: dict, run: LoadRun, warmup: float, watch: Watch | None, usages) -> None:
    """The round's figures: from our records, else locust's (rounded) statistics."""
    got = rounds.figures(run.records, warmup)
    record["generator_processes"] = run.processes
    record["generator_warned"] = run.warned
    if "window" not in got:
        if run.stats and not got.get("too_short"):  # locust's figures, but never over one burst
            record.update(bucket_figures(run.stats))
        else:
            record["error"] = got["error"] + (f"; locust log: {run.log_tail}" if run.log_tail else "")
        return
    start, end = got.pop("window")
    record.update(got)
    record["latency_source"] = EXACT
    load_span = end - (start - warmup)
    server_usage(record, watch, *usages, (start, end, load_span))
    record["generator_cpu"] = run.watch.busiest(start, end)
    record["generator_cores"] = run.watch.cores(start, end)
    record["machine_cpu"] = (watch or run.watch).machine_share(start, end)


def bucket_figures(stats: dict) -> dict:
    return {
        "latency_source": BUCKETS,
        "requests": num(stats.get("Request Count"), int),
        "failures": num(stats.get("Failure Count"), int),
        "rps": num(stats.get("Requests/s")),
        "p50_ms": num(stats.get("50%")),
        "p95_ms": num(stats.get("95%")),
        "p99_ms": num(stats.get("99%")),
        "avg_ms": num(stats.get("Average Response Time")),
    }
