"""What the identity headers prove about a server model.

Input: one record per response, as the locustfile writes them (``pid``,
``thread``, ``start``, ``end``, ``cpu_ms``, ``lane_kind`` come from headers set
*inside the app*; ``t`` and ``ms`` are the client's view).  Output: plain
numbers -- distinct processes, distinct (process, thread) lanes, the most
requests that were inside the app at the same moment, the CPU each request
used against its time inside the app -- and the sentence a reader wants.

Turn-taking, judged once (``turns_of``): requests took turns on a processor
when each one's CPU time is a fraction of its time inside the app
(``wall_per_cpu`` at least ``TURNS``) while the requests together kept the
processors they had busy (``request_cores`` at least ``CPU_BOUND`` of a core
per process, or ``CPU_BOUND_BUSY`` in all when other work held every core --
then the sentence says part of the wait was for a core).  Which processor:
the GIL for OS threads of one process on an interpreter whose GIL is on; the
one OS thread for greenlets; the machine's cores for processes.  No claim for
sub-millisecond requests (too little CPU to tell), I/O-bound rows (the cores
were idle), or threads on an interpreter without a GIL.

Pure functions, no locust import: the compare runner and the locustfile both
use them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from loadtest.inserver.headers import LANE_GREENLET, LANE_THREAD
from loadtest.measure import verdicts
from loadtest.registry.records import ComparisonRow

# Below this median time inside the app, requests on a threaded server rarely
# coincide there (the GIL serialises most of it and the headers have µs
# resolution), so "1 in flight" says nothing about the model.
SHORT_REQUEST_MS = 1.0
# Share of the run a pool imbalance must last before the sentence mentions it.
IMBALANCE_SHARE = 0.05
# Time inside the app at least this many times the request's CPU time: the request waited its turn.
TURNS = 1.5
# The requests' CPU summed over the window, per process, at least this share of a core: CPU-bound.
CPU_BOUND = 0.5
# ... or of a core in all when other work held every core (``verdicts.busy_elsewhere``): the
# server then got less than it could use, so the share it got says less.
CPU_BOUND_BUSY = 0.2


def natural(text: str) -> list:
    """Sort key that puts conn-2 before conn-10 (lane names in the report and the live chart)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


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
        out.append(
            {
                **r,
                "start": start,
                "end": end,
                "pid": str(r["pid"]),
                "thread": str(r.get("thread")),
                "cpu_ms": cpu_ms(r),
            }
        )
    return out


def cpu_ms(record: dict) -> float | None:
    """The request's own CPU time in ms (``X-Request-Cpu-Ms``), None when the server did not say."""
    try:
        value = float(record["cpu_ms"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if value >= 0 else None


def cpu_figures(ok: list[dict]) -> dict:
    """Mean CPU per request, mean time inside the app of the same requests, and their ratio."""
    timed = [r for r in ok if r.get("cpu_ms") is not None]
    if not timed:
        return {"cpu_ms_mean": None, "app_ms_mean": None, "wall_per_cpu": None}
    cpu = sum(r["cpu_ms"] for r in timed) / len(timed)
    wall = sum((r["end"] - r["start"]) * 1000.0 for r in timed) / len(timed)
    return {"cpu_ms_mean": cpu, "app_ms_mean": wall, "wall_per_cpu": wall / cpu if cpu > 0 else None}


def lane_kind(ok: list[dict]) -> str:
    """ "thread", "greenlet", both joined by "+", or "" when the server did not say."""
    return "+".join(sorted({str(r["lane_kind"]) for r in ok if r.get("lane_kind")}))


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
        "lane_kind": lane_kind(ok),
        **cpu_figures(ok),
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


def new_thread_per_connection(row: ComparisonRow) -> bool:
    """More threads served than users could hold connections, in a model without a fixed pool.

    Each locust user keeps one keep-alive connection, so a server with one
    long-lived thread per connection shows at most ``users`` threads.  More
    threads than that (and than the pool's capacity) means connections were
    reopened and each got a fresh thread.
    """
    lanes, pids, users = row.threads or 0, row.pids or 0, row.users or 0
    capacity = row.capacity
    return lanes > users and lanes >= 2 * pids and (capacity is None or lanes > capacity)


def lane_word(row: ComparisonRow) -> str:
    """What a lane is in this row: "greenlet" when the server said so, else "thread"."""
    return LANE_GREENLET if row.lane_kind == LANE_GREENLET else LANE_THREAD


def shape_of(row: ComparisonRow) -> str:
    pids, lanes = row.pids or 0, row.threads or 0
    per_pid = row.max_threads_per_pid or 0
    word = lane_word(row)
    if pids == 1 and lanes == 1:
        shape = f"1 process, 1 {word}"
    elif pids == 1:
        shape = f"1 process, {plural(lanes, word)}"
    elif per_pid <= 1:
        shape = f"{plural(pids, 'process')}, 1 {word} each"
    else:
        shape = f"{plural(pids, 'process')}, {count(lanes)} (process, {word}) lanes"
    if word == LANE_GREENLET and lanes > pids:
        shape += " on one OS thread" if pids == 1 else " on one OS thread per process"
    if new_thread_per_connection(row):
        shape += (
            f" (a new thread per connection: {count(lanes)} threads for {plural(row.users or 0, 'user')})"
        )
    return shape


def flow_of(row: ComparisonRow) -> str:
    """How many requests were inside the app together, or why that could not be seen."""
    lanes, inflight, users = row.threads or 0, in_flight(row), row.users or 0
    app_ms = row.app_ms_p50
    short = app_ms is not None and app_ms < SHORT_REQUEST_MS
    capacity = row.capacity
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


def errors_of(row: ComparisonRow) -> str:
    """ "12 failed: 10 non-2xx, 2 connection reset", or "" when every request succeeded."""
    failures = row.failures or 0
    parts = [f"{count(n)} {kind.replace('_', ' ')}" for kind, n in row.errors.items() if n]
    if not failures and not parts:
        return ""
    text = f"{count(failures)} of {count(row.requests or 0)} requests failed"
    return text + (": " + ", ".join(parts) if parts else "")


def imbalance_of(row: ComparisonRow) -> str:
    share = row.pool_full_share
    if share is None or share < IMBALANCE_SHARE:
        return ""
    return (
        f"for {share:.0%} of the run one process had all its threads busy while another had a free one: "
        "each connection belongs to one worker process, whatever its free threads"
    )


def gil_enabled(row: ComparisonRow) -> bool | None:
    """Whether the server's interpreter ran with a GIL (``/_lab/usage``); None when unknown."""
    python = row.interpreter
    if not isinstance(python, dict) or "gil_enabled" not in python:
        return None
    return bool(python["gil_enabled"])


def in_flight(row: ComparisonRow) -> float:
    """The most requests inside the app at once (median over rounds); 0 when not seen."""
    return row.value("max_in_flight") or 0


def cpu_bound(row: ComparisonRow) -> bool:
    """The requests' own CPU kept the processors they had busy (module policy); False when unknown."""
    cpu, cores, pids = row.value("cpu_ms_mean"), row.value("request_cores"), row.pids or 0
    if cpu is None or cores is None or not pids:
        return False
    if cpu < SHORT_REQUEST_MS:
        return False
    if verdicts.busy_elsewhere(row):
        return cores >= CPU_BOUND_BUSY
    return cores >= CPU_BOUND * min(pids, row.cpu_count or pids)


def turns_of(row: ComparisonRow) -> str:
    """Who took turns on what, with the figures, or "" where the evidence cannot show it (module policy).

    The clause starts with its own joint (", but ..." after a count of
    requests in flight that overstates the parallelism, "; ..." otherwise).
    """
    cpu, wall, stretch = row.value("cpu_ms_mean"), row.value("app_ms_mean"), row.value("wall_per_cpu")
    cores = row.value("request_cores")
    if wall is None or stretch is None or cpu is None or cores is None or not cpu_bound(row):
        return ""
    pids, per_pid = row.pids or 0, row.max_threads_per_pid or 1
    took = f"each {cpu:.0f} ms of CPU took {wall:.0f} ms inside the app"
    used = f"together they used {cores:.1f} core{'' if round(cores, 1) == 1 else 's'}"
    busy = verdicts.busy_elsewhere(row)
    elsewhere = (
        f" (other work kept {busy[0]:.0%} of the machine's cores busy: part of that wait was for a core)"
        if busy
        else ""
    )
    # Lanes of one process take turns only if their requests were inside the app together.
    together = in_flight(row) > pids
    if per_pid > 1 and stretch >= TURNS and together:
        if lane_word(row) == LANE_GREENLET:
            return f", but {used}: {took} -- the greenlets took turns on one OS thread{elsewhere}"
        if gil_enabled(row) is False:
            return ""
        where = "on one GIL" if pids == 1 else "on their process's GIL"
        return f", but {used}: {took} -- the threads took turns {where}{elsewhere}"
    if pids > 1 and per_pid == 1:
        if stretch < TURNS:
            return f"; {used}: {took} -- each process ran on its own core"
        return f"; {used}: {took} -- the processes took turns on the machine's cores{elsewhere}"
    return ""


def answer(name: str, scenario: str, row: ComparisonRow) -> str:
    """One sentence per target, derived from the measurements in ``row``."""
    if row.error:
        return f"{name}: no measurement -- {row.error}"
    if not row.with_identity:
        sentence = f"{name}: {row.value('rps') or 0:.1f} req/s, but no identity headers came back"
        failed = errors_of(row)
        return sentence + (f"; {failed}" if failed else "")
    tail = f"{row.value('rps') or 0:.1f} req/s"
    if scenario == "io" and row.io_efficiency is not None:
        tail += f", {row.io_efficiency:.0%} of the {row.io_ceiling:.1f} req/s this model allows"
    cores = row.value("server_cpu_cores")
    if scenario == "cpu" and cores is not None:
        tail += f", server used {cores:.2f} of {'?' if row.cpu_count is None else row.cpu_count} cores"
    sentence = f"{name}: {shape_of(row)} -- {flow_of(row)}"
    sentence += f"{turns_of(row)}; {tail}"
    for extra in (imbalance_of(row), errors_of(row)):
        if extra:
            sentence += f"; {extra}"
    if row.machine_bound:
        sentence += (
            " (server and generator used nearly every core: the machine, not the server, set this figure)"
        )
    if row.generator_saturated:
        sentence += " (load generator saturated: a floor)"
    return sentence
