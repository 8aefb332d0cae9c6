"""``make bench``: hello-world throughput and CPU per request of the registry's servers, measured by wrk.

Every target runs the same app (``app:app``, ``GET /``) on a free 127.0.0.1
port, one target at a time, and is measured by the same client -- ``wrk``,
written in C so it is not the bottleneck.  Policy, stated once:

- **Rounds are interleaved** (every target once, then every target again), so
  a burst of other load hits every target rather than one; each figure is the
  median over the rounds with its interval (:mod:`loadtest.measure.stats`:
  min..max for up to 5 rounds).
- **CPU per request** is the CPU time of the server's whole process tree
  (workers and reaped children included) over the measured seconds, divided by
  the requests wrk completed.  On a shared machine it moves far less than
  requests/s, which depends on how much CPU the server was given; the goals on
  CPU use it, and every lab mode is also shown as a ratio to the best native
  server (granian, uWSGI) of the same run.
- **A run directory** ``results/bench-<UTC time>/`` holds ``bench.json``
  (every round of every target, the medians, the goals), ``env.json`` and
  ``rerun.sh``.  ``python -m loadtest.bench --diff A B`` (or ``python -m
  loadtest.diff A B`` on two bench runs) says which targets changed beyond
  the noise: the intervals of the two runs do not overlap.
- **Proving the diff**: ``--app tests.slowed:app`` serves the same app with
  ``LAB_SLOW_US`` (default 100) microseconds of extra CPU work per request;
  the server is untouched.  A diff of a normal run against that one must mark
  the slowed targets significant and slower.

Figures are measured here and printed, never asserted in a test: the machine
they run on decides them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadtest.inserver.usage import cpu_seconds
from loadtest.measure import stats
from loadtest.run.environment import load_average, machine_record
from loadtest.run.processes import free_port, start, stop, tail, wait_healthy
from loadtest.targets import BENCH_VARIANTS, OUR_APP, TARGETS, Target, lookup
from server.oneline import OneLineParser

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
RESULT_FILE = "bench.json"
REFERENCE = "flask-dev"  # app.run(): what people actually use, so every req/s ratio is against it
NATIVE = ("granian", "uwsgi")  # servers whose protocol work is not Python: the near-limit anchors
OURS = (
    "lab-single",
    "lab-single-h11",
    "lab-threaded",
    "lab-threaded-pinned",
    "lab-forking",
    "lab-prefork-w2",
    "lab-event",
)
NAME_WIDTH = max(map(len, (*TARGETS, *BENCH_VARIANTS)))  # the tables' target column: any name fits
METRICS = ("rps", "cpu_us")  # requests/s (higher is better), CPU us per request (lower is better)
LOWER_IS_BETTER = {"rps": False, "cpu_us": True}
# A change smaller than this share of the baseline is no change, even with disjoint intervals.
MIN_CHANGE = {"rps": 0.03, "cpu_us": 0.03}

# make bench's targets: registry entries, and registry variants for the fair pairs (2 worker
# processes each).  lab-event runs as the registry has it, against waitress's 4 threads.
BENCH_TARGETS = (
    "lab-single",
    "lab-single-h11",  # not in a goal: lab-single with the pure-Python parser (what parsing in Python costs)
    "lab-threaded",
    "lab-threaded-pinned",  # not in a goal: what one core for the GIL changes (README)
    "lab-forking",
    "lab-prefork-w2",
    "lab-event",
    "flask-dev",
    "gunicorn-sync-w2",
    "waitress",
    *NATIVE,
)


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


GOALS = (
    Goal("lab-single", "native", "cpu_us", 1.25),
    Goal("lab-threaded", "flask-dev", "rps", 2.5),
    Goal("lab-forking", "gunicorn-sync-w2", "rps", 1.2),
    Goal("lab-prefork-w2", "gunicorn-sync-w2", "rps", 1.5),
    Goal("lab-event", "waitress", "rps", 1.5),
)


@dataclass
class Round:
    """One measurement of one target."""

    rps: float | None
    cpu_us: float | None = None  # server CPU (every process of its tree) per request, microseconds
    requests: int = 0
    errors: str = ""

    def record(self) -> dict:
        return {"rps": self.rps, "cpu_us": self.cpu_us, "requests": self.requests, "errors": self.errors}


@dataclass
class Row:
    """A target over all rounds: its records and their medians with intervals."""

    target: Target
    rounds: list[Round] = field(default_factory=list)

    def summary(self) -> dict:
        records = [r.record() for r in self.rounds if r.rps is not None]
        out = stats.summarize(records, METRICS) if records else {}
        failed = [r.errors for r in self.rounds if r.rps is None]
        return {
            "target": self.target.name,
            "explanation": self.target.explanation,
            "command_args": list(self.target.args),
            "per_round": [r.record() for r in self.rounds],
            "failed": failed[0] if failed else "",
            **{m: out.get(m) for m in METRICS},
            **{m + stats.CI_SUFFIX: out.get(m + stats.CI_SUFFIX) for m in METRICS},
        }


# --- measuring -----------------------------------------------------------------------------------


def run_wrk(port: int, args: argparse.Namespace, duration: int) -> tuple[float, str, int]:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        f"http://127.0.0.1:{port}/",
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    problems = [line.strip() for line in out.splitlines() if "Socket errors" in line or "Non-2xx" in line]
    total = re.search(r"(\d+) requests in", out)
    return float(match[1]), "; ".join(problems), int(total[1]) if total else 0


def measure(target: Target, args: argparse.Namespace, logs: Path) -> Round:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAB_SERVER_MODEL": target.name}
    try:
        proc = start(target.command(args.app, port), logs, target.name, env, ROOT)
    except OSError as exc:
        return Round(None, errors=f"FAILED: {exc}")
    try:
        wait_healthy(port, proc, timeout=30.0)
        if args.warmup > 0:
            run_wrk(port, args, args.warmup)
        root = psutil.Process(proc.pid)
        cpu_before = cpu_seconds(root)
        rate, problems, requests = run_wrk(port, args, args.duration)
        cpu = cpu_seconds(root) - cpu_before
        return Round(rate, cpu / requests * 1e6 if requests else None, requests, problems)
    except (RuntimeError, TimeoutError, subprocess.SubprocessError, psutil.Error) as exc:
        return Round(None, errors=f"FAILED: {exc}; {tail(logs / f'{target.name}.stderr.log', 3)}")
    finally:
        stop(proc)


# --- judging one run: goals and ratios -----------------------------------------------------------


def best_native(rows: dict[str, dict]) -> tuple[str, float] | None:
    """(name, CPU us/req) of the native server with the lowest CPU per request in this run."""
    measured = [(rows[n]["cpu_us"], n) for n in NATIVE if n in rows and rows[n].get("cpu_us")]
    if not measured:
        return None
    cpu, name = min(measured)
    return name, cpu


def check_goals(rows: dict[str, dict]) -> list[dict]:
    """Each goal with the measured ratio of medians and its verdict (met / MISSED / not measured)."""
    native = best_native(rows)
    out = []
    for goal in GOALS:
        mine = (rows.get(goal.target) or {}).get(goal.metric)
        if goal.other == "native":
            other = native[1] if native else None
        else:
            other = (rows.get(goal.other) or {}).get(goal.metric)
        ratio = mine / other if mine and other else None
        if ratio is None:
            verdict = "not measured"
        elif goal.metric == "cpu_us":
            verdict = "met" if ratio <= goal.ratio else "MISSED"
        else:
            verdict = "met" if ratio >= goal.ratio else "MISSED"
        out.append({"goal": goal.text(), "ratio": ratio, "verdict": verdict})
    return out


def native_ratios(rows: dict[str, dict]) -> dict[str, float]:
    """Each of our modes' CPU per request divided by the best native server's, same run."""
    native = best_native(rows)
    if native is None:
        return {}
    return {n: rows[n]["cpu_us"] / native[1] for n in OURS if n in rows and rows[n].get("cpu_us")}


# --- the run directory ---------------------------------------------------------------------------


def environment(started: str, finished: str, loads: tuple, argv: list[str]) -> dict:
    return {"kind": "bench", **machine_record(started, finished, loads, argv)}


def write_rerun(out: Path, argv: list[str]) -> None:
    """An executable rerun.sh: the same bench, into a new directory (or $1)."""
    args: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg == "--out":
            skip = not skip
            continue
        if not arg.startswith("--out="):
            args.append(arg)
    command = shlex.join([sys.executable, "-m", "loadtest.bench", *args])
    script = (
        "#!/bin/sh\n"
        "# Repeat this bench: same arguments, new output directory (or the one given).\n"
        "set -e\n"
        f"cd {shlex.quote(str(ROOT))}\n"
        f'exec {command} --out "${{1:-{out}-rerun-$(date -u +%Y%m%dT%H%M%SZ)}}"\n'
    )
    path = out / "rerun.sh"
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)


def write_run(out: Path, doc: dict, env: dict, argv: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULT_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (out / "env.json").write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    write_rerun(out, argv)


def is_bench_run(path: Path) -> bool:
    return (path / RESULT_FILE).is_file()


def load_run(path: Path) -> dict:
    """A bench run's document, or SystemExit(2) with one line naming the problem."""
    try:
        doc = json.loads((path / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"python -m loadtest.bench: error: {path} is not a bench run: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise SystemExit(f"python -m loadtest.bench: error: {path / RESULT_FILE} has no rows")
    return doc


# --- text ----------------------------------------------------------------------------------------


def _interval(row: dict, metric: str, scale: str) -> str:
    ci = row.get(metric + stats.CI_SUFFIX)
    if not ci or ci[0] == ci[1]:
        return ""
    return f" ({ci[0]:{scale}}-{ci[1]:{scale}})"


def report(doc: dict) -> str:
    rows = {r["target"]: r for r in doc["rows"]}
    reference = (rows.get(REFERENCE) or {}).get("rps")
    p = doc["parameters"]
    lines = [
        f"wrk -t{p['threads']} -c{p['connections']} -d{p['duration']:g}s, GET / (Hello Flask), "
        f"median of {p['rounds']} interleaved round(s) (min-max); {os.cpu_count()} CPUs, "
        f"load average {doc['load_before']:.2f} before, {doc['load_after']:.2f} after; "
        f"req/s ratios against app.run() ({REFERENCE}), CPU ratios against the best native server",
        "",
        f"| {'target':<{NAME_WIDTH}} | {'req/s':>22} | {'vs app.run':>10} | {'CPU us/req':>20} "
        f"| {'vs native':>9} | notes",
        f"|{'-' * (NAME_WIDTH + 2)}|{'-' * 24}|{'-' * 12}|{'-' * 22}|{'-' * 11}|------",
    ]
    ratios = doc.get("native_cpu_ratio", {})
    for row in doc["rows"]:
        rps, cpu = row.get("rps"), row.get("cpu_us")
        rate = f"{rps:,.0f}{_interval(row, 'rps', ',.0f')}" if rps else "-"
        ratio = f"{rps / reference:.2f}x" if rps and reference else "-"
        cpu_text = f"{cpu:,.0f}{_interval(row, 'cpu_us', ',.0f')}" if cpu else "-"
        native = f"{ratios[row['target']]:.2f}x" if row["target"] in ratios else "-"
        note = f"{row['explanation']}. {row['failed']}".strip()
        lines.append(
            f"| {row['target']:<{NAME_WIDTH}} | {rate:>22} | {ratio:>10} | {cpu_text:>20} "
            f"| {native:>9} | {note}"
        )
    lines.append("")
    for goal in doc["goals"]:
        ratio = f"{goal['ratio']:.2f}x" if goal["ratio"] is not None else "-"
        lines.append(f"goal {goal['goal']}: {ratio} ({goal['verdict']})")
    return "\n".join(lines)


# --- the diff of two runs ------------------------------------------------------------------------


def change(metric: str, a: dict, b: dict) -> dict:
    """How ``metric`` moved from row a to row b, and whether beyond the noise.

    Significant: both sides have an interval (at least 2 rounds), the intervals
    do not overlap, and the medians differ by more than ``MIN_CHANGE``.
    """
    va, vb = a.get(metric), b.get(metric)
    ca, cb = a.get(metric + stats.CI_SUFFIX), b.get(metric + stats.CI_SUFFIX)
    if va is None or vb is None or not va:
        return {"a": va, "b": vb, "change": None, "significant": False, "direction": "not measured"}
    rounds_ok = len(a.get("per_round", [])) >= 2 and len(b.get("per_round", [])) >= 2
    share = (vb - va) / va
    significant = rounds_ok and stats.significant(ca, cb) and abs(share) > MIN_CHANGE[metric]
    worse = (share > 0) if LOWER_IS_BETTER[metric] else (share < 0)
    direction = ("slower" if worse else "faster") if significant else "within the noise"
    return {"a": va, "b": vb, "change": share, "significant": significant, "direction": direction}


def verdict(changes: dict[str, dict]) -> str:
    """One word per target: slower / faster if any metric moved that way (mixed if both), else no change."""
    moved = {c["direction"] for c in changes.values() if c["significant"]}
    if moved == {"slower"}:
        return "slower"
    if moved == {"faster"}:
        return "faster"
    if moved:
        return "mixed"
    return "no clear change"


def diff_runs(doc_a: dict, doc_b: dict) -> list[dict]:
    """Per target measured in both runs: each metric's change and the target's verdict."""
    rows_a = {r["target"]: r for r in doc_a["rows"]}
    out = []
    for row_b in doc_b["rows"]:
        row_a = rows_a.get(row_b["target"])
        if row_a is None:
            continue
        changes = {m: change(m, row_a, row_b) for m in METRICS}
        out.append({"target": row_b["target"], "changes": changes, "verdict": verdict(changes)})
    return out


def diff_text(name_a: str, name_b: str, doc_a: dict, doc_b: dict) -> str:
    lines = [
        f"bench diff: A = {name_a}, B = {name_b};"
        " significant = the min-max intervals of the rounds do not overlap and the medians differ by more"
        f" than {MIN_CHANGE['cpu_us']:.0%}",
        "",
        f"| {'target':<{NAME_WIDTH}} | {'CPU us/req A -> B':>24} | {'req/s A -> B':>26} | verdict",
        f"|{'-' * (NAME_WIDTH + 2)}|{'-' * 26}|{'-' * 28}|--------",
    ]
    for d in diff_runs(doc_a, doc_b):
        cells = []
        for metric in ("cpu_us", "rps"):
            c = d["changes"][metric]
            if c["change"] is None:
                cells.append("-")
                continue
            mark = " *" if c["significant"] else ""
            cells.append(f"{c['a']:,.0f} -> {c['b']:,.0f} ({c['change']:+.0%}){mark}")
        lines.append(f"| {d['target']:<{NAME_WIDTH}} | {cells[0]:>24} | {cells[1]:>26} | {d['verdict']}")
    lines.append("")
    lines.append("* significant")
    if moved := reference_moves(doc_a, doc_b):
        lines.append(
            f"caution: servers that are not ours changed too ({', '.join(moved)}): the machine's load"
            " differed"
            f" between the runs (load {doc_a['load_before']:.2f}-{doc_a['load_after']:.2f} vs"
            f" {doc_b['load_before']:.2f}-{doc_b['load_after']:.2f}), so part of every change may be the"
            " machine's; compare builds in one sitting, or trust CPU/req over req/s"
        )
    return "\n".join(lines)


def reference_moves(doc_a: dict, doc_b: dict) -> list[str]:
    """The targets that are not ours whose figures changed significantly: the runs' machines differed."""
    return [
        d["target"]
        for d in diff_runs(doc_a, doc_b)
        if d["target"] not in OURS and d["verdict"] != "no clear change"
    ]


def diff_main(run_a: Path, run_b: Path) -> int:
    doc_a, doc_b = load_run(run_a), load_run(run_b)
    text = diff_text(run_a.resolve().name, run_b.resolve().name, doc_a, doc_b)
    out = run_b / f"bench-diff-vs-{run_a.resolve().name}.md"
    out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"wrote {out}")
    return 0


# --- main ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtest.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds per target (default 10)")
    parser.add_argument("-c", "--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds per target; medians of them (default 3)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="unmeasured seconds first, 0 for none (default 1)"
    )
    names = list(BENCH_TARGETS)
    parser.add_argument("--only", nargs="+", choices=names, metavar="TARGET", help=f"subset of {names}")
    parser.add_argument(
        "--target-args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="extra options for one target, e.g. 'lab-event=--threads 4' (repeatable)",
    )
    parser.add_argument(
        "--app",
        default=OUR_APP,
        help=f"WSGI app every target serves (default {OUR_APP}; tests.slowed:app adds LAB_SLOW_US of CPU)",
    )
    parser.add_argument("--out", type=Path, help="run directory (default results/bench-<UTC time>)")
    parser.add_argument(
        "--diff",
        nargs=2,
        type=Path,
        metavar=("RUN_A", "RUN_B"),
        help="compare two bench runs only",
    )
    return parser


def chosen_targets(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Target]:
    extra: dict[str, str] = {}
    for item in args.target_args:
        name, sep, text = item.partition("=")
        if not sep or name not in BENCH_TARGETS:
            parser.error(
                f"--target-args wants NAME=ARGS with NAME one of {list(BENCH_TARGETS)}, got {item!r}"
            )
        extra[name] = f"{extra.get(name, '')} {text}".strip()
    targets = []
    for name in BENCH_TARGETS:
        if args.only and name not in args.only:
            continue
        target = lookup(name)
        assert target is not None, name
        targets.append(target.with_args(extra[name]) if name in extra else target)
    return targets


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.diff:
        return diff_main(*args.diff)
    if (
        args.duration <= 0
        or args.rounds < 1
        or args.connections < 1
        or not 1 <= args.threads <= args.connections
    ):
        parser.error("need duration > 0, rounds >= 1 and 1 <= threads <= connections")
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu)", file=sys.stderr
        )
        return 2
    chosen = chosen_targets(parser, args)
    started = datetime.datetime.now(datetime.UTC)
    out = args.out or RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}"
    logs = Path(tempfile.mkdtemp(prefix="wsgi-lab-bench-"))
    load_before = load_average()
    rows = {t.name: Row(t) for t in chosen}
    for round_no in range(1, args.rounds + 1):  # interleaved, so a burst of other load hits every target
        for target in chosen:
            print(f"round {round_no}/{args.rounds}: measuring {target.name} ...", file=sys.stderr, flush=True)
            rows[target.name].rounds.append(measure(target, args, logs))
    summaries = [rows[t.name].summary() for t in chosen]
    by_name = {s["target"]: s for s in summaries}
    loads = (load_before, load_average())
    doc = {
        "kind": "bench",
        "parameters": {
            "duration": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "app": args.app,
        },
        "load_before": loads[0] or 0.0,
        "load_after": loads[1] or 0.0,
        "rows": summaries,
        "goals": check_goals(by_name),
        "native_cpu_ratio": native_ratios(by_name),
    }
    finished = datetime.datetime.now(datetime.UTC)
    write_run(out, doc, environment(started.isoformat(), finished.isoformat(), loads, argv), argv)
    print(report(doc))
    print(f"\nwrote {out / RESULT_FILE}; compare two runs with: python -m loadtest.bench --diff RUN_A RUN_B")
    return 1 if any(s["failed"] and s["rps"] is None for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
