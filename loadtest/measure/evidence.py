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

# Below this median time inside the app, requests on a threaded server rarely
# coincide there (the GIL serialises most of it and the headers have µs
# resolution), so "1 in flight" says nothing about the model.
SHORT_REQUEST_MS = 1.0
# Share of the run a pool imbalance must last before the sentence mentions it.
IMBALANCE_SHARE = 0.05


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


def facts(records: list[dict], users: int | None = None) -> dict:
    """Counts that tell server models apart (``users`` sharpens ``pool_full_share``)."""
    ok = served(records)
    pids = {r["pid"] for r in ok}
    lanes = {(r["pid"], r["thread"]) for r in ok}
    threads_per_pid = {}
    for pid, thread in lanes:
        threads_per_pid.setdefault(pid, set()).add(thread)
    models = sorted({str(r.get("model")) for r in ok if r.get("model")})
    imbalance = pool_imbalance(ok, users)
    return {
        "requests": len(records),
        "with_identity": len(ok),
        "pids": len(pids),
        "threads": len(lanes),
        "max_threads_per_pid": max((len(t) for t in threads_per_pid.values()), default=0),
        "max_in_flight": max_in_flight((r["start"], r["end"]) for r in ok),
        "app_ms_p50": app_ms_median(ok),
        "pool_full_share": imbalance["share"] if imbalance else None,
        "models_seen": models,
    }


def app_ms_median(ok: list[dict]) -> float | None:
    """Median time a request spent inside the app (X-Request-End - X-Request-Start), in ms."""
    spans = sorted((r["end"] - r["start"]) * 1000.0 for r in ok)
    if not spans:
        return None
    mid = len(spans) // 2
    return spans[mid] if len(spans) % 2 else (spans[mid - 1] + spans[mid]) / 2.0


def pool_sizes(ok: list[dict]) -> dict[str, int]:
    """Threads per process: the most any process was seen serving with, for every process.

    Worker processes of one server share one configuration (``--threads N``),
    and a process that was handed fewer connections never shows its idle
    threads -- which is exactly the imbalance to measure.
    """
    lanes: dict[str, set[str]] = {}
    for r in ok:
        lanes.setdefault(r["pid"], set()).add(r["thread"])
    size = max((len(threads) for threads in lanes.values()), default=0)
    return dict.fromkeys(lanes, size)


def pool_imbalance(records: Iterable[dict], users: int | None = None) -> dict | None:
    """Time during which one process had every thread busy while another process had a free one.

    A server that hands each connection to one worker process (gunicorn's
    gthread worker accepts in every process, whatever its free threads) can
    leave a request waiting behind a full process while a thread elsewhere is
    idle.  Only meaningful for several processes with several threads each;
    None otherwise.  Pool size: ``pool_sizes``.
    With ``users`` known, only moments with fewer than ``users`` requests in
    the app count: then some user's request was outside the app, waiting.
    Returns ``full_while_free_s``, ``window_s``, ``share`` (of the window)
    and the merged ``intervals`` (absolute app timestamps) for a timeline.
    """
    ok = served(records)
    sizes = pool_sizes(ok)
    if len(sizes) < 2 or min(sizes.values()) < 2:
        return None
    events = sorted(
        [(r["start"], 1, r["pid"]) for r in ok] + [(r["end"], -1, r["pid"]) for r in ok],
        key=lambda e: (e[0], e[1]),
    )
    busy = dict.fromkeys(sizes, 0)
    intervals: list[list[float]] = []
    previous = events[0][0]
    for when, delta, pid in events:
        waiting = users is None or sum(busy.values()) < users
        if when > previous and waiting and unbalanced(busy, sizes):
            if intervals and intervals[-1][1] == previous:
                intervals[-1][1] = when
            else:
                intervals.append([previous, when])
        busy[pid] += delta
        previous = when
    window = events[-1][0] - events[0][0]
    total = sum(end - start for start, end in intervals)
    return {
        "full_while_free_s": total,
        "window_s": window,
        "share": total / window if window > 0 else 0.0,
        "pool": sizes,
        "intervals": [tuple(i) for i in intervals],
    }


def unbalanced(busy: dict[str, int], sizes: dict[str, int]) -> bool:
    full = [pid for pid in sizes if busy[pid] >= sizes[pid]]
    return bool(full) and any(busy[pid] < sizes[pid] for pid in sizes if pid not in full)


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


def count(n: float) -> str:
    """4 -> "4", 4.0 -> "4", 2.5 -> "2.5": a median over rounds may be a float."""
    return f"{n:g}" if isinstance(n, float) else str(n)


def plural(n: float, word: str) -> str:
    return f"{count(n)} {word}" + ("" if n == 1 else "es" if word.endswith("ss") else "s")


def new_thread_per_connection(row: dict) -> bool:
    """More threads served than users could hold connections, in a model without a fixed pool.

    Each locust user keeps one keep-alive connection, so a server with one
    long-lived thread per connection shows at most ``users`` threads.  More
    threads than that (and than the pool's capacity) means connections were
    reopened and each got a fresh thread.
    """
    lanes, pids, users = row.get("threads") or 0, row.get("pids") or 0, row.get("users") or 0
    capacity = row.get("capacity")
    return lanes > users and lanes >= 2 * pids and (capacity is None or lanes > capacity)


def shape_of(row: dict) -> str:
    pids, lanes = row.get("pids") or 0, row.get("threads") or 0
    per_pid = row.get("max_threads_per_pid", 1)
    if pids == 1 and lanes == 1:
        shape = "1 process, 1 thread"
    elif pids == 1:
        shape = f"1 process, {plural(lanes, 'thread')}"
    elif per_pid <= 1:
        shape = f"{plural(pids, 'process')}, 1 thread each"
    else:
        shape = f"{plural(pids, 'process')}, {count(lanes)} (process, thread) lanes"
    if new_thread_per_connection(row):
        shape += f" (a new thread per connection: {count(lanes)} threads for {plural(row['users'], 'user')})"
    return shape


def flow_of(row: dict) -> str:
    """How many requests were inside the app together, or why that could not be seen."""
    lanes, inflight, users = row.get("threads") or 0, row.get("max_in_flight") or 0, row.get("users") or 0
    app_ms = row.get("app_ms_p50")
    short = isinstance(app_ms, int | float) and app_ms < SHORT_REQUEST_MS
    capacity = row.get("capacity")
    if inflight <= 1 and lanes > 1 and short:
        return (
            f"no overlap observed inside the app, where a request spends only {app_ms:.2f} ms: "
            "too short to tell whether requests run together there"
        )
    if inflight <= 1:
        return "requests waited in line, at most 1 in flight"
    if inflight >= users:
        return f"all {count(users)} users served at once ({count(inflight)} in flight)"
    if capacity is not None and inflight >= capacity:
        flow = f"at most {count(inflight)} in flight: the other {count(users - inflight)} users queued"
    else:
        flow = f"up to {count(inflight)} of {count(users)} requests in flight at once"
    if short:
        flow += f" (a request spends {app_ms:.2f} ms inside the app, so overlap there is rare: a lower bound)"
    return flow


def errors_of(row: dict) -> str:
    """ "12 failed: 10 non-2xx, 2 connection reset", or "" when every request succeeded."""
    failures = row.get("failures") or 0
    split = row.get("errors") or {}
    parts = [f"{count(n)} {kind.replace('_', ' ')}" for kind, n in split.items() if n]
    if not failures and not parts:
        return ""
    text = f"{count(failures)} of {count(row.get('requests') or 0)} requests failed"
    return text + (": " + ", ".join(parts) if parts else "")


def imbalance_of(row: dict) -> str:
    share = row.get("pool_full_share")
    if not isinstance(share, int | float) or share < IMBALANCE_SHARE:
        return ""
    return (
        f"for {share:.0%} of the run one process had all its threads busy while another had a free one: "
        "each connection belongs to one worker process, whatever its free threads"
    )


def answer(name: str, scenario: str, row: dict) -> str:
    """One sentence per target, derived from the measurements in ``row``."""
    if row.get("error"):
        return f"{name}: no measurement -- {row['error']}"
    if not row.get("with_identity"):
        sentence = f"{name}: {row.get('rps') or 0:.1f} req/s, but no identity headers came back"
        failed = errors_of(row)
        return sentence + (f"; {failed}" if failed else "")
    tail = f"{row.get('rps') or 0:.1f} req/s"
    if scenario == "io" and row.get("io_efficiency") is not None:
        tail += f", {row['io_efficiency']:.0%} of the {row['io_ceiling']:.1f} req/s this model allows"
    cores = row.get("server_cpu_cores")
    if scenario == "cpu" and isinstance(cores, int | float):
        tail += f", server used {cores:.2f} of {row.get('cpu_count', '?')} cores"
    sentence = f"{name}: {shape_of(row)} -- {flow_of(row)}; {tail}"
    for extra in (imbalance_of(row), errors_of(row)):
        if extra:
            sentence += f"; {extra}"
    if row.get("machine_bound"):
        sentence += (
            " (server and generator used nearly every core: the machine, not the server, set this figure)"
        )
    if row.get("generator_saturated"):
        sentence += " (load generator saturated: a floor)"
    return sentence
