"""What the identity headers prove about a server model.

Input: one record per response, as the locustfile writes them (``pid``,
``thread``, ``start``, ``end`` come from headers set *inside the app*; ``t``
and ``ms`` are the client's view).  Output: plain numbers -- distinct
processes, distinct (process, thread) lanes, the most requests that were
inside the app at the same moment -- and the sentence a reader wants.

Pure functions, no locust import: the compare runner and the locustfile both
use them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def served(records: Iterable[dict]) -> list[dict]:
    """Records that carry usable identity headers, with numeric times."""
    out = []
    for r in records:
        try:
            start, end = float(r["start"]), float(r["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if r.get("pid") is None or end < start:
            continue
        out.append({**r, "start": start, "end": end, "pid": str(r["pid"]), "thread": str(r.get("thread"))})
    return out


def max_in_flight(intervals: Iterable[tuple[float, float]]) -> int:
    """Largest number of [start, end) intervals covering one instant (sweep line).

    At equal timestamps ends sort before starts, so a request that begins
    the microsecond the previous one ended does not count as overlap -- that
    is exactly what a one-at-a-time server produces.
    """
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    current = best = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def facts(records: list[dict]) -> dict:
    """Counts that tell server models apart."""
    ok = served(records)
    pids = {r["pid"] for r in ok}
    lanes = {(r["pid"], r["thread"]) for r in ok}
    threads_per_pid = {}
    for pid, thread in lanes:
        threads_per_pid.setdefault(pid, set()).add(thread)
    models = sorted({str(r.get("model")) for r in ok if r.get("model")})
    return {
        "requests": len(records),
        "with_identity": len(ok),
        "pids": len(pids),
        "threads": len(lanes),
        "max_threads_per_pid": max((len(t) for t in threads_per_pid.values()), default=0),
        "max_in_flight": max_in_flight((r["start"], r["end"]) for r in ok),
        "models_seen": models,
    }


def load_window(records: list[dict]) -> tuple[float, float] | None:
    """Client-side span of the load: first request sent to last response received."""
    times = [(float(r["t"]), float(r["t"]) + float(r["ms"]) / 1000.0) for r in records if r.get("t")]
    if not times:
        return None
    return min(t for t, _ in times), max(e for _, e in times)


def io_ceiling(users: int, sleep_s: float, capacity: int | None) -> float | None:
    """Best possible req/s for the io scenario: in-flight slots / seconds each slot is busy."""
    if sleep_s <= 0:
        return None
    slots = users if capacity is None else min(users, capacity)
    return slots / sleep_s


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("ss") else "s")


def answer(name: str, scenario: str, row: dict) -> str:
    """One sentence per target, derived from the measurements in ``row``."""
    if row.get("error"):
        return f"{name}: no measurement -- {row['error']}"
    pids, lanes, inflight = row.get("pids", 0), row.get("threads", 0), row.get("max_in_flight", 0)
    users = row.get("users", 0)
    if not row.get("with_identity"):
        return f"{name}: {row.get('rps') or 0:.1f} req/s, but no identity headers came back"
    per_pid = row.get("max_threads_per_pid", 1)
    if pids == 1 and lanes == 1:
        shape = "1 process, 1 thread"
    elif pids == 1:
        shape = f"1 process, {plural(lanes, 'thread')}"
    elif per_pid <= 1:
        shape = f"{plural(pids, 'process')}, 1 thread each"
    else:
        shape = f"{plural(pids, 'process')}, {lanes} (process, thread) lanes"
    if lanes > 2 * max(inflight, 1) and lanes >= 2 * pids:
        shape += " (short-lived: a new thread per connection)"
    capacity = row.get("capacity")
    if inflight <= 1:
        flow = "requests waited in line, at most 1 in flight"
    elif inflight >= users:
        flow = f"all {users} users served at once ({inflight} in flight)"
    elif capacity is not None and inflight >= capacity:
        flow = f"at most {inflight} in flight: the other {users - inflight} users queued"
    else:
        flow = f"up to {inflight} of {users} requests in flight at once"
    tail = f"{row.get('rps') or 0:.1f} req/s"
    if scenario == "io" and row.get("io_efficiency") is not None:
        tail += f", {row['io_efficiency']:.0%} of the {row['io_ceiling']:.1f} req/s this model allows"
    cores = row.get("server_cpu_cores")
    if scenario == "cpu" and isinstance(cores, int | float):
        tail += f", server used {cores:.2f} of {row.get('cpu_count', '?')} cores"
    sentence = f"{name}: {shape} -- {flow}; {tail}"
    if row.get("generator_saturated"):
        sentence += " (load generator saturated: a floor)"
    return sentence
