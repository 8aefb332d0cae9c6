"""``make bench``'s goals and ratios: each of our modes against app.run() and the best native server."""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.registry.records import BenchRow
from loadtest.registry.targets import Role, with_role

REFERENCE = "flask-dev"  # app.run(): what people actually use, so every req/s ratio is against it
# make bench's targets: registry entries, and registry variants for the fair pairs (2 worker
# processes each).  lab-event runs as the registry has it, against waitress's 4 threads.
BENCH_TARGETS = (
    "lab-single",
    "lab-single-h11",  # not in a goal: lab-single with the pure-Python parser (what parsing in Python costs)
    "lab-threaded",
    "lab-threaded-pinned",  # not in a goal: what one core for the GIL changes (docs/server.md)
    "lab-forking",
    "lab-prefork-w2",
    "lab-event",
    "flask-dev",
    "gunicorn-sync-w2",
    "waitress",
    "granian",
    "uwsgi",
)
NATIVE = with_role(Role.NATIVE, BENCH_TARGETS)  # protocol work not in Python: the near-limit anchors
OURS = with_role(Role.OURS, BENCH_TARGETS)  # each shown against the best native server


@dataclass(frozen=True)
class Goal:
    """``target``'s ``metric`` against ``other``'s; ``other`` "native" = the best of :data:`NATIVE`."""

    target: str
    other: str
    metric: str
    ratio: float  # rps: at least this ratio; cpu_us: at most this ratio

    def text(self) -> str:
        word = "CPU/req <=" if self.metric == "cpu_us" else "req/s >="
        other = "best of " + "/".join(NATIVE) if self.other == "native" else self.other
        return f"{self.target} {word} {self.ratio:g}x {other}"


GOALS = (  # the server's goals table (docs/bench.md); the callgrind goal is make callgrind's
    Goal("lab-single", "native", "cpu_us", 1.25),
    Goal("lab-threaded", "flask-dev", "rps", 3.0),
    Goal("lab-forking", "gunicorn-sync-w2", "rps", 1.2),
    Goal("lab-prefork-w2", "gunicorn-sync-w2", "rps", 1.6),
    Goal("lab-event", "waitress", "rps", 1.6),
)


def best_native(rows: dict[str, BenchRow]) -> tuple[str, float] | None:
    """(name, CPU us/req) of the native server with the lowest CPU per request in this run."""
    measured = [(rows[n].cpu_us, n) for n in NATIVE if n in rows and rows[n].cpu_us]
    if not measured:
        return None
    cpu, name = min(measured)
    return name, cpu


def figure_of(rows: dict[str, BenchRow], target: str, metric: str) -> float | None:
    row = rows.get(target)
    return row.value(metric) if row else None


def check_goals(rows: dict[str, BenchRow]) -> list[dict]:
    """Each goal with the measured ratio of medians and its verdict (met / MISSED / not measured)."""
    native = best_native(rows)
    out = []
    for goal in GOALS:
        mine = figure_of(rows, goal.target, goal.metric)
        if goal.other == "native":
            other = native[1] if native else None
        else:
            other = figure_of(rows, goal.other, goal.metric)
        ratio = mine / other if mine and other else None
        if ratio is None:
            verdict = "not measured"
        elif goal.metric == "cpu_us":
            verdict = "met" if ratio <= goal.ratio else "MISSED"
        else:
            verdict = "met" if ratio >= goal.ratio else "MISSED"
        out.append({"goal": goal.text(), "ratio": ratio, "verdict": verdict})
    return out


def native_ratios(rows: dict[str, BenchRow]) -> dict[str, float]:
    """Each of our modes' CPU per request divided by the best native server's, same run."""
    native = best_native(rows)
    if native is None:
        return {}
    return {n: rows[n].cpu_us / native[1] for n in OURS if n in rows and rows[n].cpu_us}
