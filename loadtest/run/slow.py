"""The slow scenario: K slow clients hold connections while normal users send ``GET /``.

``python -m loadtest.compare --scenario slow [--slow-clients K]`` runs, for each
target, one locust run of ``SlowClient`` (K of them: heads trickled a few bytes
a second, idle keep-alive connections) and ``SlowNormalUser`` (``--users``
of them, starting 2 s later, giving up on a request after 5 s).  Per target it
reports what the normal users got and what the slow clients held:

- **success rate, p50, p95** of the normal users' requests, over every request
  recorded (a request the server never answered is a 5 s timeout, so it counts);
  no warm-up is dropped: the start is what slow clients hurt most.
- **time to first success**: from the normal users' first request to the first
  answer any of them got ("none" if no request succeeded during the run).
- **what the slow clients held**, measured: the server's process tree is
  sampled every ``SAMPLE_EVERY_S`` with psutil (processes, threads, established
  connections on the target's port), before the load and during it.  Only where
  the runner sees the target's processes; otherwise it says "not measured".

Each row ends with a sentence (``verdict``): the model kept answering normal
users (every request answered, p95 under ``ANSWERING_P95_MS``), starved them
(under half answered), or slowed them (anything between).

One round, the targets in the order given; figures come from the same
per-request records as every other scenario.  Writes ``slow.json`` next to the
locust files and prints the table; compare then renders the "Slow clients"
section of report.md/report.html from the same rows (``loadtest.report``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import psutil

from loadtest.inserver.tree import Sampler, read_each
from loadtest.measure import stats
from loadtest.registry import records
from loadtest.registry.records import SlowRow
from loadtest.run import locustrun
from loadtest.run.plan import Plan
from loadtest.run.pool import Pool
from loadtest.run.runner import TargetRunner

SAMPLE_EVERY_S = 0.5
# A model "kept answering" when every normal request succeeded and p95 stayed under this.
ANSWERING_P95_MS = 1000.0
# A model "starved" normal users when fewer than this share of their requests succeeded.
STARVED_BELOW = 0.5


@dataclass(frozen=True)
class Holding:
    """One sample of the server's process tree."""

    processes: int
    threads: int
    connections: int  # established TCP connections on the server's port, server side


def sample(server: TargetRunner) -> Holding | None:
    """What the server's processes hold right now; None if it is gone or its processes are not visible."""
    procs, port = server.processes(), server.port
    if not procs:
        return None

    def held(proc: psutil.Process) -> tuple[int, int]:
        established = [
            c
            for c in proc.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        ]
        return proc.num_threads(), len(established)

    counts = [count for _, count in read_each(procs, held)]
    return Holding(len(procs), sum(t for t, _ in counts), sum(c for _, c in counts))


def sampler(server: TargetRunner) -> Sampler[Holding]:
    """Samples a server's processes every ``SAMPLE_EVERY_S`` (``tree.Sampler``); ``peak`` reads it."""
    return Sampler(lambda: sample(server), SAMPLE_EVERY_S, name="slow-sampler")


def peak(samples: list[Holding]) -> Holding | None:
    """The peak of each count over the samples; None when there were none."""
    if not samples:
        return None
    return Holding(*(max(getattr(s, f) for s in samples) for f in ("processes", "threads", "connections")))


def normal_figures(records: list[dict]) -> dict:
    """Success rate, p50/p95 and time to first success of the normal users' requests."""
    timed = [r for r in records if r.get("t") is not None and r.get("ms") is not None]
    if not timed:
        return {"requests": 0, "success_rate": None, "p50_ms": None, "p95_ms": None, "first_success_s": None}
    ok = [r for r in timed if r.get("ok")]
    first_sent = min(float(r["t"]) for r in timed)
    first_answer = min((float(r["t"]) + float(r["ms"]) / 1000 for r in ok), default=None)
    latencies = [float(r["ms"]) for r in timed]
    return {
        "requests": len(timed),
        "success_rate": len(ok) / len(timed),
        "p50_ms": stats.percentile(latencies, 50),
        "p95_ms": stats.percentile(latencies, 95),
        "first_success_s": None if first_answer is None else first_answer - first_sent,
    }


def held_sentence(slow_clients: int, before: Holding | None, peak: Holding | None) -> str:
    """What the slow clients held, in words, from the samples."""
    if before is None or peak is None:
        return "what the slow clients held was not measured (not a local target)"
    return (
        f"with {slow_clients} slow clients connected the server held up to {peak.connections} client "
        f"connections in {peak.processes} process(es) running {peak.threads} threads "
        f"(before the load: {before.processes} process(es), {before.threads} threads)"
    )


def verdict(row: SlowRow) -> str:
    """The row's sentence: kept answering, slowed or starved normal users, and what was held."""
    if row.error:
        return f"{row.target}: FAILED -- {row.error}"
    rate, p95 = row.success_rate, row.p95_ms
    if rate is None:
        return f"{row.target}: no normal request was recorded; {row.held}."
    figures = f"{100 * rate:.0f}% of normal requests answered, p95 {fmt(p95, '.0f')} ms"
    first = row.first_success_s
    if rate == 1.0 and p95 is not None and p95 < ANSWERING_P95_MS:
        kind = "kept answering normal users"
    elif rate < STARVED_BELOW or first is None:
        kind = "starved normal users"
    else:
        kind = "slowed normal users"
    wait = "none ever answered" if first is None else f"first answer after {first:.1f} s"
    return f"{row.target} {kind} ({figures}, {wait}); {row.held}."


def fmt(value: float | None, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def table(rows: list[SlowRow]) -> str:
    """The per-target table, as printed and kept in slow.txt."""
    lines = [
        f"{'target':<18} {'success':>8} {'p50 ms':>8} {'p95 ms':>8} {'1st ok s':>9}  "
        "what the slow clients held",
    ]
    for r in rows:
        if r.error:
            lines.append(f"{r.target:<18} FAILED: {r.error}")
            continue
        rate = fmt(None if r.success_rate is None else 100 * r.success_rate, ".0f")
        lines.append(
            f"{r.target:<18} {rate + '%':>8} {fmt(r.p50_ms, '.0f'):>8} {fmt(r.p95_ms, '.0f'):>8} "
            f"{fmt(r.first_success_s, '.1f', 'none'):>9}  {r.held}"
        )
    return "\n".join(lines)


def measure(
    server: TargetRunner, settings: locustrun.Settings, users: int, slow_clients: int, out: Path, t0: float
) -> SlowRow:
    """One target: its locust run with the slow clients, and the samples of its tree."""
    row = SlowRow(server.name, normal_users=users, slow_clients=slow_clients)
    if server.problem:
        row.error = server.problem
        row.answer = verdict(row)
        return row
    before = sample(server)
    watch = sampler(server).start() if before is not None else None
    prefix = out / "locust" / "slow" / f"{server.name}.r1"
    try:
        run = locustrun.run(settings, "slow", users + slow_clients, server.url, prefix, 1, server.name, t0)
    finally:
        if watch:
            watch.stop()
    most = peak(watch.samples) if watch else None
    row = replace(
        row,
        **normal_figures(run.records),
        held=held_sentence(slow_clients, before, most),
        before=asdict(before) if before else None,
        peak=asdict(most) if most else None,
        identity_file=str(run.identity_file.relative_to(out)),
    )
    if not server.alive():
        row.error = "target died during the run"
    elif not run.records:
        row.error = f"locust recorded no request (exit status {run.exit_code}); see {run.log}"
    row.answer = verdict(row)
    return row


def run(plan: Plan, pool: Pool, out: Path, t0: float) -> list[SlowRow]:
    """Every target of ``plan`` under the slow scenario; prints the table, writes slow.json/slow.txt.

    Local targets only (``plan`` refuses ``--hosts`` with the slow scenario): the
    slow clients' holdings are sampled with psutil on this machine.
    """
    settings = locustrun.Settings(
        plan.sleep_s, plan.cpu_ms, plan.hello_path, plan.duration, plan.spawn_rate, plan.slow_clients
    )
    users = plan.users[0]
    rows = []
    try:
        pool.start_all()
        for name in plan.targets:
            print(f"slow: {name}: {plan.slow_clients} slow clients, {users} normal users", flush=True)
            rows.append(measure(pool.ready(name), settings, users, plan.slow_clients, out, t0))
            pool.after_run(name)
    finally:
        pool.stop_all()
    text = table(rows)
    records.write_slow(out, rows)
    (out / "slow.txt").write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    return rows
