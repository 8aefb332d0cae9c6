"""Compare server models under the same load: ``python -m loadtest.compare``.

Orchestration only; each job has its module: ``plan`` (arguments), ``pool``
(which targets run when; each through a target runner, ``runner``/``local``),
``locustrun`` (locust and its files), ``round_record`` (a round's figures,
from our per-request records: ``rounds``), ``rows`` (the result row, a
``records.ComparisonRow``), ``environment`` (env.json, rerun.sh), ``report`` (rendering).

How a comparison runs:

- Every local target starts once, on its own free 127.0.0.1 port, and stays up
  for the whole comparison: an idle server costs next to no CPU, and each run
  measures the CPU of its own server's process tree over its own window.  With
  ``--port`` the targets share one port, so each run starts and stops its server.
  With ``--hosts`` the servers are already running.
- ``--rounds N``: round 1 of every scenario x user count x target, then round 2,
  ...; within a round the target order is shuffled with ``random.Random(seed)``
  (``--seed``, recorded in env.json and rerun.sh), so drift of the machine's
  speed spreads over every target instead of landing on one.
- Generator processes (``--processes auto``): 2 locust worker processes (at most
  one per core) for hello and mixed, where one locust process saturates a core
  before most servers do; 1 otherwise.
- Server CPU and memory: local targets are sampled with psutil; for ``--hosts``
  the server reports its own tree at ``GET /_lab/usage`` (``loadtest/inserver/usage.py``),
  read just before and after each run, CPU divided by the load's span (the server
  is idle outside it, so the warm-up second is included there).

A target that fails to start or dies is reported in its row with the tail of
its stderr; the others still run and the exit status is 1.  Bad arguments are
one-line errors with exit status 2.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sys
import time
import urllib.request
from pathlib import Path

from loadtest.inserver.usage import USAGE_PATH
from loadtest.measure import round_record, rows
from loadtest.measure.cpuwatch import Watch
from loadtest.registry import records, targets
from loadtest.registry.paths import PROJECT_ROOT
from loadtest.registry.records import ComparisonRow
from loadtest.run import environment, locustrun, processes, slow
from loadtest.run.plan import Plan, UsageError, build_parser, make_plan
from loadtest.run.pool import Pool

GENERATOR_HEAVY = ("hello", "mixed")
# Before each run, one GET /health must come back: a server that queues requests (one at a time,
# a fixed pool) still owes the requests locust abandoned when the previous run stopped, and the
# next run must not pay for them. The answer comes once the queue ahead of it has drained.
DRAIN_TIMEOUT_S = 60.0


def reachability_problem(url: str, timeout: float = 3.0) -> str | None:
    status, problem = processes.wait_http(url + "/health", None, timeout)
    return None if status is not None else problem


def fetch_usage(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + USAGE_PATH, timeout=5) as r:
            data = json.loads(r.read())
        return data if isinstance(data, dict) and "cpu_s" in data else None
    except (OSError, ValueError):
        return None


def generator_processes(plan: Plan, scenario: str) -> int:
    if plan.processes is not None:
        return plan.processes
    return min(2, os.cpu_count() or 1) if scenario in GENERATOR_HEAVY else 1


def prefix_for(plan: Plan, out: Path, scenario: str, name: str, users: int, round_no: int) -> Path:
    sweep = f".u{users}" if len(plan.users) > 1 else ""
    return out / "locust" / scenario / f"{name}{sweep}.r{round_no}"


def measure_round(
    plan: Plan, pool: Pool, out: Path, key: tuple[str, str, int], where: tuple, t0: float
) -> dict:
    """One round of one row: the per-round record."""
    scenario, name, users = key
    round_no, position, index, total = where
    head = f"[{index}/{total}] r{round_no} {scenario} {name} u{users}"
    record: dict = {"round": round_no, "position": position, "error": ""}
    print(f"{head}: starting (elapsed {time.monotonic() - t0:.0f} s)", flush=True)
    server = pool.ready(name) if not plan.hosts else None
    if server is not None and server.problem:
        record["error"] = server.problem
        print(f"{head}: FAILED -- {server.problem}", flush=True)
        return record
    url = server.url if server else plan.hosts[name]
    drained = processes.http_status(url + "/health", timeout=DRAIN_TIMEOUT_S)
    if drained is None:
        record["drain_note"] = f"/health did not answer within {DRAIN_TIMEOUT_S:g} s before the run"
    watch = Watch(server.usage, memory_every=4).start() if server else None
    before = fetch_usage(url) if not server else None
    record["load_before"] = environment.load_average()
    nproc = generator_processes(plan, scenario)
    settings = locustrun.Settings(plan.sleep_s, plan.cpu_ms, plan.hello_path, plan.duration, plan.spawn_rate)
    prefix = prefix_for(plan, out, scenario, name, users, round_no)
    try:
        run = locustrun.run(settings, scenario, users, url, prefix, nproc, head, t0)
    finally:
        if watch is not None:
            watch.stop()
    after = fetch_usage(url)  # local servers' CPU comes from the watch; every server names its interpreter
    record["load_after"] = environment.load_average()
    record["interpreter"] = (after or {}).get("interpreter") or {}
    died = server is not None and not server.alive()
    round_record.fill(record, run, plan.warmup, watch, (before, after if not server else None))
    record["identity_file"] = str(run.identity_file.relative_to(out))
    record["locust_log"] = str(run.log.relative_to(out))
    if died:
        record["error"] = f"target died during the run ({server.exit_text()})"
    elif not record["error"] and run.exit_code not in (0, 1) and not run.stats:
        record["error"] = f"locust produced no statistics (exit status {run.exit_code})"
    if server is not None:
        pool.after_run(name)
    status = "FAILED -- " + record["error"] if record["error"] else f"{record.get('rps') or 0:.1f} req/s"
    print(f"{head}: done, {status}", flush=True)
    return record


def new_row(plan: Plan, pool: Pool, key: tuple[str, str, int]) -> ComparisonRow:
    scenario, name, users = key
    server = pool.servers.get(name)
    row = rows.new(
        scenario,
        name,
        users,
        kind="external" if plan.hosts else "local",
        url=plan.hosts[name] if plan.hosts else server.url,
        command=server.command_text() if server else "",
        explanation=targets.explanation(name),
        capacity=plan.capacity(name, users),
        cpu_count=os.cpu_count() or 1,
        duration_s=plan.duration,
    )
    if row.capacity is None:
        row.notes.append("capacity unknown (not in the registry): io ceiling assumes one slot per user")
    elif plan.hosts and scenario == "io":
        row.notes.append(f"capacity {row.capacity}: the registry's default configuration of {name}")
    if name in plan.target_args:
        row.notes.append(f"options appended to the registry's: {plan.target_args[name]}")
    return row


def close_row(plan: Plan, pool: Pool, row: ComparisonRow) -> ComparisonRow:
    server = pool.servers.get(row.target)
    if server is not None:
        row.notes.extend(server.notes)
        if any(r.get("error") for r in row.per_round):
            row.stderr_tail = server.stderr_tail()
    row.server_mem_kind = next((r["server_mem_kind"] for r in row.per_round if r.get("server_mem_kind")), "")
    row.cpu_limit = next((r["cpu_limit"] for r in row.per_round if r.get("cpu_limit") is not None), None)
    notes = {r[k] for r in row.per_round for k in ("usage_note", "window_note", "drain_note") if r.get(k)}
    row.notes.extend(sorted(notes))
    return rows.finish(row, plan.sleep_s)


def run(plan: Plan) -> int:
    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_before = environment.load_average()
    t0 = time.monotonic()
    keys = [(s, n, u) for s in plan.scenarios for u in plan.users for n in plan.targets]
    total = len(keys) * plan.rounds
    print(
        f"wsgi-lab compare: {total} run(s) of {plan.duration} s ({plan.warmup:g} s warm-up), "
        f"{plan.rounds} round(s), seed {plan.seed} -> {environment.shown(out)}",
        flush=True,
    )
    for name, line in plan.skipped.items():
        print(f"skipped {name}: not installed in {plan.venv} ({line})", flush=True)
    pool = Pool(plan, out)
    if plan.scenarios == ["slow"]:
        slow_rows = slow.run(plan, pool, out, t0)
        code = render(out, [], write_env(plan, started, load_before), t0, slow_rows)
        for r in slow_rows:
            print(f"  slow   {r.answer}", flush=True)
        return code or (1 if any(r.error for r in slow_rows) else 0)
    table = {key: new_row(plan, pool, key) for key in keys}
    rng = random.Random(plan.seed)
    index = 0
    try:
        pool.start_all()
        environment.settle(plan.settle_s)
        for round_no in range(1, plan.rounds + 1):
            order = rng.sample(plan.targets, len(plan.targets))
            for scenario in plan.scenarios:
                for users in plan.users:
                    for position, name in enumerate(order, 1):
                        index += 1
                        key = (scenario, name, users)
                        where = (round_no, position, index, total)
                        table[key].per_round.append(measure_round(plan, pool, out, key, where, t0))
    finally:
        pool.stop_all()
    results = [close_row(plan, pool, table[key]) for key in keys]
    return write(plan, results, started, load_before, t0)


def write_env(
    plan: Plan, started: str, load_before: float | None, results: list[ComparisonRow] | None = None
) -> dict:
    """env.json and rerun.sh of the comparison; returns the environment.

    ``python`` is the runner's interpreter; ``server_interpreters`` what each
    server said it ran on (``/_lab/usage``), which differs with ``--venv``.
    """
    out = plan.out
    finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    loads = (load_before, environment.load_average())
    locustfile = str(locustrun.LOCUSTFILE.relative_to(PROJECT_ROOT))
    env = environment.environment(started, finished, plan.as_dict(), plan.argv, loads, locustfile)
    env["server_python"] = str(plan.python) if plan.venv else sys.executable
    env["server_interpreters"] = {r.target: r.interpreter or {} for r in results or []}
    env["rerun"] = environment.write_rerun(out, plan.argv, plan.seed)
    records.write_env(out, env)
    return env


def write(
    plan: Plan, results: list[ComparisonRow], started: str, load_before: float | None, t0: float
) -> int:
    out = plan.out
    env = write_env(plan, started, load_before, results)
    summary = records.Summary(rows=results, parameters=env["parameters"])
    # The measurements are on disk before anything renders them: a report that fails loses no figure.
    records.write_summary(out, summary)
    code = render(out, results, env, t0)
    if code:
        return code
    for r in results:
        print(f"  {r.scenario:<6} u{r.users:<3} {r.answer}", flush=True)
    failed = [r for r in results if r.error]
    if failed:
        print(f"{len(failed)} row(s) failed: " + ", ".join(f"{r.scenario}/{r.target}" for r in failed))
        return 1
    return 0


def render(
    out: Path,
    results: list[ComparisonRow],
    env: dict,
    t0: float,
    slow_rows: list[records.SlowRow] | None = None,
) -> int:
    """report.md/report.html from figures already on disk; 1 if rendering failed."""
    try:
        from loadtest.report import main as report  # matplotlib is slow to import: not for a usage error

        report.write_all(out, results, env, slow_rows)
    except Exception as exc:  # any rendering bug: say so, keep the figures
        shown = environment.shown(out / (records.SLOW if slow_rows is not None else records.SUMMARY))
        print(f"report failed ({type(exc).__name__}: {exc}); the figures are in {shown}")
        print(f"render again with: python -m loadtest.report {environment.shown(out)}")
        return 1
    print(f"wrote {environment.shown(out / 'report.html')} ({time.monotonic() - t0:.0f} s)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args, argv, reachability_problem)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return run(plan)
