"""Soak: minutes of mixed locust load on each lab mode, watching memory, file descriptors and failures.

For each mode (``lab-<mode>`` in the target registry, for every mode the server
offers) this starts our server with the demo app on a free 127.0.0.1 port,
runs locust headless (``MixedUser``) against it for ``--minutes``, and every
``--interval`` seconds samples the server's process tree: RSS and PSS summed
over the tree, open fds summed, process count.  Then it judges each mode
against the soak goals, measured after a warm-up:

- memory: RSS grows by less than ``RSS_GROWTH_LIMIT`` from the first to the last
  window (medians of each, so one sample's noise does not decide);
- fds: the last window's median is no higher than the first window's maximum;
- failures: locust counted none.

Output in ``results/soak-<timestamp>/``: ``report.md`` (a table, met/missed per
mode and why), ``soak.png`` (RSS and fds over time), ``<mode>.samples.csv``
and locust's own CSVs and logs.  ``make soak`` runs it (not part of CI; a
short run of one mode is in tests/loadtest/test_soak.py).

Not known here: how a mode works inside.  A forking server's tree changes as
children come and go, which is why windows and medians are compared.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from loadtest.inserver.tree import Sampler, read_each
from loadtest.measure.round_record import num
from loadtest.measure.verdicts import load_busy
from loadtest.registry.paths import PROJECT_ROOT, RESULTS
from loadtest.registry.targets import TARGETS
from loadtest.run import locustrun
from loadtest.run.local import LocalRunner
from loadtest.run.runner import START_TIMEOUT_S, Launch
from server.config import MODES
from server.oneline import OneLineParser

RSS_GROWTH_LIMIT = 0.10  # the goal: after warm-up, RSS grows by less than this fraction
WARMUP_FRACTION = 0.2  # the first part of each run is warm-up (imports, caches, pools filling)
WINDOW_FRACTION = 0.15  # the first/last window compared, as a fraction of the post-warm-up samples
MIN_WINDOW = 3  # samples
SCENARIO = "mixed"
MB = 1024 * 1024
PROGRESS_S = 30.0  # a progress line this often while a mode is under load


@dataclass
class Sample:
    t: float  # seconds since the load started (Unix time while sampling)
    rss: int  # bytes, summed over the server's process tree
    pss: int  # bytes, summed (shared pages counted once across the tree)
    fds: int
    processes: int


@dataclass
class Verdict:
    met: bool
    rss_first: float  # MB, median of the first post-warm-up window
    rss_last: float
    rss_growth: float  # fraction
    pss_first: float
    pss_last: float
    fds_first_max: int
    fds_last: float  # median of the last window
    failures: int
    requests: int
    reasons: list[str] = field(default_factory=list)


def sample_tree(procs: list[psutil.Process], t: float) -> Sample | None:
    """One sample of a server's processes (its tree); None if it is gone."""
    if not procs:
        return None

    def sizes(proc: psutil.Process) -> tuple[int, int, int]:
        info = proc.memory_full_info()
        return info.rss, info.pss, proc.num_fds()

    alive = [size for _, size in read_each(procs, sizes)]
    return Sample(t, *(sum(size[i] for size in alive) for i in range(3)), len(alive))


def windows(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """The first and last windows of the samples after warm-up."""
    if not samples:
        return [], []
    end = samples[-1].t
    steady = [s for s in samples if s.t >= end * WARMUP_FRACTION]
    if len(steady) < 2 * MIN_WINDOW:
        return [], []
    size = max(MIN_WINDOW, int(len(steady) * WINDOW_FRACTION))
    return steady[:size], steady[-size:]


def judge(samples: list[Sample], failures: int, requests: int) -> Verdict:
    """Met or missed, with the figures; pure, so the rule is tested without load."""
    first, last = windows(samples)
    if len(first) < MIN_WINDOW or len(last) < MIN_WINDOW:
        return Verdict(False, 0, 0, 0, 0, 0, 0, 0, failures, requests, ["too few samples to judge"])
    rss_first = statistics.median(s.rss for s in first) / MB
    rss_last = statistics.median(s.rss for s in last) / MB
    growth = rss_last / rss_first - 1 if rss_first else 0.0
    fds_first_max = max(s.fds for s in first)
    fds_last = statistics.median(s.fds for s in last)
    verdict = Verdict(
        True,
        rss_first,
        rss_last,
        growth,
        statistics.median(s.pss for s in first) / MB,
        statistics.median(s.pss for s in last) / MB,
        fds_first_max,
        fds_last,
        failures,
        requests,
    )
    if growth >= RSS_GROWTH_LIMIT:
        verdict.reasons.append(f"RSS grew {growth:+.1%} (limit {RSS_GROWTH_LIMIT:.0%})")
    if fds_last > fds_first_max:
        verdict.reasons.append(f"fds rose from at most {fds_first_max} to {fds_last:g}")
    if failures:
        verdict.reasons.append(f"{failures} failed requests")
    if not requests:
        verdict.reasons.append("no requests were made")
    verdict.met = not verdict.reasons
    return verdict


def under_load(samples: list[Sample], began: float | None, seconds: int) -> list[Sample]:
    """The samples taken while locust's users ran, timed from the start of the load.

    Before it, the server idles while locust starts; after it, a forking
    server's children exit: neither says anything about a leak.
    """
    began = began if began is not None else (samples[0].t if samples else 0.0)
    return [
        Sample(s.t - began, s.rss, s.pss, s.fds, s.processes)
        for s in samples
        if began <= s.t <= began + seconds
    ]


def run_locust(url: str, seconds: int, users: int, prefix: Path, args: argparse.Namespace) -> dict:
    """Headless locust, MixedUser, against ``url``; locust's aggregated stats row."""
    settings = locustrun.Settings(
        sleep_s=args.sleep_s, cpu_ms=args.cpu_ms, hello_path="/", duration=seconds, spawn_rate=None
    )
    argv = locustrun.command(settings, SCENARIO, users, url, prefix, processes=1)
    run = locustrun.run_argv(
        argv,
        prefix,
        seconds,
        f"soak {prefix.name}",
        time.monotonic(),
        every=PROGRESS_S,
        env={"LAB_IDENTITY_MAX_RECORDS": "1000"},  # the soak reads locust's counts, not the records
    )
    return run.stats


def soak_one(mode: str, args: argparse.Namespace, out: Path) -> tuple[Verdict, list[Sample]]:
    """Load one mode for the whole run; its verdict and samples (a server that fails to start misses)."""
    target = TARGETS[f"lab-{mode}"]
    launch = Launch(name=target.name, target=target, log_dir=out, stem=f"{mode}.server", cwd=PROJECT_ROOT)
    with LocalRunner(launch) as server:
        if not (server.start() and server.wait_ready(START_TIMEOUT_S)):
            verdict = judge([], 0, 0)
            verdict.reasons = [f"{server.problem}: {server.stderr_tail(3)}"]
            return verdict, []
        sampler = Sampler(lambda: sample_tree(server.processes(), time.time()), args.interval, name="soak")
        sampler.start()
        seconds = max(1, round(args.minutes * 60))
        try:
            stats = run_locust(server.url, seconds, args.users, out / mode, args)
        finally:
            sampler.stop()
        alive = server.alive()
    failures = int(num(stats.get("Failure Count"), int) or 0)
    requests = int(num(stats.get("Request Count"), int) or 0)
    samples = under_load(sampler.samples, locustrun.load_started(out / f"{mode}_stats_history.csv"), seconds)
    verdict = judge(samples, failures, requests)
    if not alive:
        verdict.met = False
        verdict.reasons.append("the server exited during the run")
    write_samples(out / f"{mode}.samples.csv", samples)
    return verdict, samples


def write_samples(path: Path, samples: list[Sample]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["seconds", "rss_bytes", "pss_bytes", "fds", "processes"])
        for s in samples:
            writer.writerow([f"{s.t:.1f}", s.rss, s.pss, s.fds, s.processes])


def plot(path: Path, runs: dict[str, list[Sample]]) -> None:
    from loadtest.reporting import soak_chart  # matplotlib is slow to import: only once a soak has run

    soak_chart.write(path, runs)


def report(path: Path, args: argparse.Namespace, verdicts: dict[str, Verdict], load: tuple) -> None:
    rows = [
        "| mode | requests | failures | RSS MB first → last | RSS growth | PSS MB first → last "
        "| fds first (max) → last | goal |",
        "|---|---:|---:|---|---:|---|---|---|",
    ]
    for mode, v in verdicts.items():
        goal = "met" if v.met else "missed: " + "; ".join(v.reasons)
        rows.append(
            f"| {mode} | {v.requests} | {v.failures} | {v.rss_first:.1f} → {v.rss_last:.1f} | "
            f"{v.rss_growth:+.1%} | {v.pss_first:.1f} → {v.pss_last:.1f} | "
            f"{v.fds_first_max} → {v.fds_last:g} | {goal} |"
        )
    busy = load_busy(max(load), os.cpu_count())
    text = [
        "# wsgi-lab soak",
        "",
        f"{args.minutes:g} min of locust `{SCENARIO}` load per mode, {args.users} users, "
        f"/sleep {args.sleep_s:g}s, /cpu {args.cpu_ms:g}ms; samples every {args.interval:g}s. "
        f"Warm-up: the first {WARMUP_FRACTION:.0%} of each run; first and last windows: "
        f"{WINDOW_FRACTION:.0%} of the rest (medians).",
        f"Goals: RSS growth < {RSS_GROWTH_LIMIT:.0%}, fds flat (last median ≤ first max), 0 failures.",
        f"Machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} at the start and "
        f"{load[1]:.2f} at the end"
        + (" (machine busy: figures are from a machine shared with other work)." if busy else "."),
        "",
        *rows,
        "",
        "![RSS and fds over time](soak.png)",
        "",
    ]
    path.write_text("\n".join(text), encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m loadtest.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load per mode (default 10)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated (default {','.join(MODES)})"
    )
    parser.add_argument("--users", type=int, default=10, help="locust users (default 10)")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between samples (default 3)")
    parser.add_argument("--sleep-s", type=float, default=0.05, help="the io task's /sleep (default 0.05)")
    parser.add_argument("--cpu-ms", type=float, default=5.0, help="the cpu task's /cpu (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default results/soak-<ts>)")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if f"lab-{m}" not in TARGETS or m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    if args.minutes <= 0 or args.users < 1 or args.interval <= 0:
        parser.error("--minutes and --interval must be > 0 and --users at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS / f"soak-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    verdicts: dict[str, Verdict] = {}
    runs: dict[str, list[Sample]] = {}
    for mode in args.modes:
        print(f"soak: {mode} for {args.minutes:g} min ...", flush=True)
        verdicts[mode], runs[mode] = soak_one(mode, args, out)
        v = verdicts[mode]
        print(
            f"soak: {mode}: {v.requests} requests, {v.failures} failures, RSS {v.rss_growth:+.1%}, "
            f"fds {v.fds_first_max} -> {v.fds_last:g}: {'met' if v.met else 'missed'}",
            flush=True,
        )
    plot(out / "soak.png", runs)
    report(out / "report.md", args, verdicts, (load_start, os.getloadavg()[0]))
    print(f"soak: report in {out / 'report.md'}")
    return 0 if all(v.met for v in verdicts.values()) else 1
