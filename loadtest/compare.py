"""Compare server models under the same load: ``python -m loadtest.compare``.

For each target in turn: start it on a free 127.0.0.1 port (or, with
``--hosts``, use a server that is already running), wait until it answers
HTTP, run locust headless as a subprocess with the same scenario and
parameters, stop the server by pid (SIGTERM first), then turn locust's CSVs
and the identity records into one row of evidence.  At the end write
``summary.json``, ``summary.csv``, ``report.md``, ``report.html`` and
``env.json`` into ``--out``.

A target that fails to start or dies is reported in its row with the tail
of its stderr; the others still run and the exit status is 1.  Bad
arguments are one-line errors with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import http.client
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil

from loadtest import evidence, targets
from loadtest.catalog import SCENARIO_CLASSES, parse_hosts
from loadtest.cpuwatch import Watch

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
STDERR_TAIL_LINES = 12
SATURATED = 0.90
MAX_DURATION_S = 3600

# The seed's experiment: the io scenario with 10 users against every target,
# then cpu (the GIL vs processes).  14 runs x (8 s + ~5 s start/stop) stays
# under ~4 minutes on a 2-core machine.
STORIES = {
    "default": {
        "scenarios": ["io", "cpu"],
        "users": 10,
        "duration": 8,
        "targets": list(targets.TARGETS),
    },
}


class UsageError(Exception):
    """A bad argument: reported as one line, exit status 2."""


# --------------------------------------------------------------------------- arguments


def duration_arg(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(s|m)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: expected whole seconds like 10, 10s or 2m")
    seconds = int(match.group(1)) * (60 if match.group(2) == "m" else 1)
    if not 1 <= seconds <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: must be 1 s to {MAX_DURATION_S} s")
    return seconds


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def port_arg(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments get one line naming the problem (no usage dump), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(targets.TARGETS)
    parser = OneLineParser(
        prog="python -m loadtest.compare",
        description="Run the same locust scenario against several WSGI server models and write a report.",
        epilog=f"targets: {names}",
    )
    parser.add_argument(
        "--story", choices=sorted(STORIES), help="a ready-made experiment (default: io then cpu)"
    )
    parser.add_argument("--targets", help="comma-separated target names (default: all)")
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIO_CLASSES),
        help="locust scenario: hello (/), io (/sleep), cpu (/cpu), mixed (default io)",
    )
    parser.add_argument("--users", type=positive_int, help="concurrent locust users (default 10)")
    parser.add_argument(
        "--spawn-rate", type=positive_float, help="users started per second (default: all at once)"
    )
    parser.add_argument("--duration", type=duration_arg, help="seconds of load per target (default 10)")
    parser.add_argument("--sleep-s", type=float, default=0.5, help="seconds per /sleep request (default 0.5)")
    parser.add_argument("--cpu-ms", type=float, default=20.0, help="CPU ms per /cpu request (default 20)")
    parser.add_argument("--hello-path", default="/", help="path the hello scenario requests (default /)")
    parser.add_argument("--out", type=Path, help="output directory (default results/<UTC timestamp>)")
    parser.add_argument(
        "--app",
        default=targets.OUR_APP,
        help="MODULE:APP to serve instead of the demo app (bring your own WSGI app)",
    )
    parser.add_argument("--hosts", help="name=url,... of servers already running (no local start)")
    parser.add_argument(
        "--port", type=port_arg, help="serve every local target on this port (default: a free one)"
    )
    parser.add_argument(
        "--startup-timeout",
        type=positive_float,
        default=30.0,
        help="seconds a target gets to answer (default 30)",
    )
    return parser


@dataclass
class Plan:
    scenarios: list[str]
    targets: list[str]
    users: int
    spawn_rate: float
    duration: int
    sleep_s: float
    cpu_ms: float
    hello_path: str
    out: Path
    app: str
    hosts: dict[str, str]
    port: int | None
    startup_timeout: float
    story: str | None
    argv: list[str] = field(default_factory=list)

    @property
    def runs(self) -> list[tuple[str, str]]:
        return [(s, t) for s in self.scenarios for t in self.targets]

    def as_dict(self) -> dict:
        d = {k: v for k, v in vars(self).items() if k != "argv"}
        d["out"] = str(self.out)
        return d


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_answer(url: str, timeout: float) -> int | None:
    """Status of ``GET url`` if anything answers HTTP, else None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, http.client.HTTPException):
        return None


def reachability_problem(url: str, timeout: float = 3.0) -> str | None:
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered HTTP: reachable
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason) or type(exc).__name__


def make_plan(args: argparse.Namespace, argv: list[str]) -> Plan:
    story = STORIES[args.story] if args.story else {}
    hosts: dict[str, str] = {}
    if args.hosts is not None:
        try:
            hosts = parse_hosts(args.hosts)
        except ValueError as exc:
            raise UsageError(f"--hosts: {exc}") from None
        if not hosts:
            raise UsageError("--hosts: no name=url entries given")
    if args.targets:
        names = [n.strip() for n in args.targets.split(",") if n.strip()]
        known = hosts or targets.TARGETS
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(f"unknown target {unknown[0]!r}; choose from: {', '.join(known)}")
        if not names:
            raise UsageError("--targets is empty")
    elif hosts:
        names = list(hosts)
    else:
        names = story.get("targets", list(targets.TARGETS))
    if len(set(names)) != len(names):
        raise UsageError("--targets names a target twice")
    if ":" not in args.app or args.app.startswith(":") or args.app.endswith(":"):
        raise UsageError(f"--app must be MODULE:APP, got {args.app!r}")
    if hosts and args.app != targets.OUR_APP:
        raise UsageError("--app and --hosts do not mix: running servers already serve their own app")
    if not 0 <= args.sleep_s <= 30:
        raise UsageError(f"--sleep-s must be between 0 and 30, got {args.sleep_s:g}")
    if not 0 <= args.cpu_ms <= 10_000:
        raise UsageError(f"--cpu-ms must be between 0 and 10000, got {args.cpu_ms:g}")
    if args.port is not None and not hosts and not port_free(args.port):
        raise UsageError(f"port {args.port} is already in use on 127.0.0.1")
    for name in names if hosts else []:
        problem = reachability_problem(hosts[name])
        if problem:
            raise UsageError(f"--hosts: {name} at {hosts[name]} is unreachable ({problem})")
    users = args.users or story.get("users", 10)
    scenarios = [args.scenario] if args.scenario else story.get("scenarios", ["io"])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Plan(
        scenarios=scenarios,
        targets=names,
        users=users,
        spawn_rate=args.spawn_rate or float(users),
        duration=args.duration or story.get("duration", 10),
        sleep_s=args.sleep_s,
        cpu_ms=args.cpu_ms,
        hello_path=args.hello_path,
        # absolute: locust runs from the project root, the caller may not
        out=(args.out or Path("results") / stamp).resolve(),
        app=args.app,
        hosts=hosts,
        port=args.port,
        startup_timeout=args.startup_timeout,
        story=args.story,
        argv=argv,
    )


# --------------------------------------------------------------------------- one target


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    """The last lines of a log -- plus the first exception line if it scrolled out.

    gunicorn, for one, prints the app's ImportError and then a screenful of
    its own shutdown traceback; the cause is what the reader needs.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    all_lines = text.rstrip().splitlines()
    last = all_lines[-lines:]
    causes = [ln for ln in all_lines[: -lines or None] if EXCEPTION_LINE.match(ln)]
    if causes and causes[0] not in last:
        return "\n".join([causes[0], "...", *last])
    return "\n".join(last)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_env(plan: Plan, name: str) -> dict[str, str]:
    env = {**os.environ, "LAB_SERVER_MODEL": name, "PYTHONUNBUFFERED": "1"}
    # The target runs from the caller's directory so a bring-your-own module
    # there imports; the project root keeps `server`, `app`, `loadtest` importable.
    paths = [os.getcwd(), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    if plan.app != targets.OUR_APP:
        env["LAB_BYO_APP"] = plan.app
    return env


class Server:
    """A local target process: started in its own session, stopped by pid."""

    def __init__(self, plan: Plan, name: str, logs: Path) -> None:
        self.name = name
        self.port = plan.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = plan.app if plan.app == targets.OUR_APP else targets.BYO_WRAPPER
        self.argv = targets.TARGETS[name].command(app, self.port)
        self.stdout_path = logs / f"{name}.stdout.log"
        self.stderr_path = logs / f"{name}.stderr.log"
        self.proc: subprocess.Popen | None = None
        self.ready_note = ""
        self.exit_code: int | None = None

    def start(self, plan: Plan) -> None:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=os.getcwd(),
                env=target_env(plan, self.name),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> str | None:
        """None when it answers HTTP; otherwise why not.

        Any HTTP answer on /health counts: our app says 200, a bring-your-own
        app without /health says 404, and either way the server is serving.
        """
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                return f"exited with status {self.proc.returncode} before answering HTTP"
            status = http_answer(self.url + "/health", timeout=1.0)
            if status is not None:
                if status != 200:
                    self.ready_note = f"no /health (HTTP {status}); ready on first HTTP answer"
                return None
            time.sleep(0.1)
        return f"did not answer HTTP on {self.url} within {timeout:g} s"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (graceful), SIGKILL after ``timeout``; then any leftover child of its session."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.exit_code is None:
            self.exit_code = proc.returncode
        # Children that outlived their parent (a forked worker mid-request)
        # share the session we created; end them by their own pids.
        for p in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if p.pid != os.getpid() and os.getsid(p.pid) == proc.pid:
                    p.kill()
        return self.exit_code


def read_aggregated(stats_csv: Path) -> dict:
    try:
        with stats_csv.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == "Aggregated":
                    return row
    except OSError:
        pass
    return {}


def live_rps(history_csv: Path, span: int = 3) -> float | None:
    """Requests/s over the last few rows of locust's stats history (one row a second).

    Computed from the running total rather than locust's "Requests/s"
    column, which averages from the start and lags at the beginning.
    """
    try:
        with history_csv.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"]
    except OSError:
        return None
    points = []
    for r in rows[-(span + 1) :]:
        ts, total = num(r.get("Timestamp")), num(r.get("Total Request Count"))
        if ts is not None and total is not None:
            points.append((ts, total))
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def load_started(history_csv: Path) -> float | None:
    """Unix time of locust's first stats row with users running."""
    try:
        with history_csv.open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if (num(r.get("User Count"), int) or 0) > 0:
                    return num(r.get("Timestamp"))
    except OSError:
        pass
    return None


def print_progress(history: Path, plan: Plan, progress: str, t0: float) -> None:
    """One progress line: which target, how far into its load, the live requests/s."""
    rps, began = live_rps(history), load_started(history)
    load = f"{min(time.time() - began, plan.duration):3.0f}" if began else "  0"
    live = f"live {rps:.1f} req/s" if rps is not None else "starting locust"
    print(
        f"{progress}  load {load}/{plan.duration} s  {live}  (elapsed {time.monotonic() - t0:.0f} s)",
        flush=True,
    )


def num(value, cast=float):
    try:
        return cast(value)
    except (TypeError, ValueError):
        return None


def run_locust(plan: Plan, scenario: str, name: str, url: str, out: Path, progress: str, t0: float) -> dict:
    """One headless locust run against ``url``; returns what it measured."""
    ldir = out / "locust" / scenario
    ldir.mkdir(parents=True, exist_ok=True)
    prefix = ldir / name
    identity_path = ldir / f"{name}.identity.jsonl"
    log_path = ldir / f"{name}.locust.log"
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--users",
        str(plan.users),
        "--spawn-rate",
        f"{plan.spawn_rate:g}",
        "--run-time",
        f"{plan.duration}s",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--html",
        str(ldir / f"{name}.locust.html"),
        "--json-file",
        str(ldir / f"{name}.locust"),  # locust appends .json
        "--sleep-s",
        f"{plan.sleep_s:g}",
        "--cpu-ms",
        f"{plan.cpu_ms:g}",
        "--hello-path",
        plan.hello_path,
        "--identity-file",
        str(identity_path),
        "--target",
        "none",
        SCENARIO_CLASSES[scenario],
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_HOSTS", "LOCUST_TARGET")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        watch = Watch(proc.pid).start()
        try:
            limit = plan.duration + 60
            last_print = 0.0
            while proc.poll() is None:
                elapsed = time.monotonic() - started
                if elapsed > limit:
                    proc.kill()
                    break
                if elapsed - last_print >= 1.0:
                    print_progress(Path(f"{prefix}_stats_history.csv"), plan, progress, t0)
                    last_print = elapsed
                time.sleep(0.2)
            proc.wait()
            # The run's last state, so even a run shorter than the print cadence shows its rate.
            print_progress(Path(f"{prefix}_stats_history.csv"), plan, progress, t0)
        finally:
            watch.stop()
    records = evidence.load(identity_path)
    window = evidence.load_window(records)
    busiest = watch.busiest(*window) if window else None
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    agg = read_aggregated(Path(f"{prefix}_stats.csv"))
    return {
        "locust_exit": proc.returncode,
        "locust_log": str(log_path.relative_to(out)),
        "locust_log_tail": tail(log_path) if not agg else "",
        "records": records,
        "window": window,
        "generator_cpu": busiest,
        "generator_warned": "CPU usage" in log_text,
        "requests": num(agg.get("Request Count"), int),
        "failures": num(agg.get("Failure Count"), int),
        "rps": num(agg.get("Requests/s")),
        "p50_ms": num(agg.get("50%")),
        "p95_ms": num(agg.get("95%")),
        "p99_ms": num(agg.get("99%")),
        "avg_ms": num(agg.get("Average Response Time")),
    }


def measure(plan: Plan, scenario: str, name: str, index: int, total: int, out: Path, t0: float) -> dict:
    progress_head = f"[{index}/{total}] {scenario} {name}"
    row: dict = {
        "scenario": scenario,
        "target": name,
        "explanation": targets.explanation(name),
        "users": plan.users,
        "duration_s": plan.duration,
        "cpu_count": os.cpu_count(),
        "error": "",
        "notes": [],
    }
    capacity = targets.capacity(name, plan.users)
    row["capacity"] = capacity
    if capacity is None:
        row["notes"].append("capacity unknown (not in the registry): io ceiling assumes one slot per user")
    server: Server | None = None
    server_watch: Watch | None = None
    print(f"{progress_head}: starting (elapsed {time.monotonic() - t0:.0f} s)", flush=True)
    if plan.hosts:
        url = plan.hosts[name]
        row.update(url=url, kind="external")
        if capacity is not None and scenario == "io":
            row["notes"].append(f"capacity {capacity}: the registry's default configuration of {name}")
    else:
        logs = out / "targets" / scenario
        logs.mkdir(parents=True, exist_ok=True)
        server = Server(plan, name, logs)
        row.update(url=server.url, kind="local", command=" ".join(server.argv))
        url = server.url
        try:
            server.start(plan)
        except OSError as exc:
            row["error"] = f"failed to start: {exc}"
            return row
        problem = server.wait_ready(plan.startup_timeout)
        if problem:
            server.stop()
            row["error"] = f"failed to start: {problem}"
            row["stderr_tail"] = tail(server.stderr_path)
            print(f"{progress_head}: FAILED -- {row['error']}", flush=True)
            return row
        if server.ready_note:
            row["notes"].append(server.ready_note)
        assert server.proc is not None
        server_watch = Watch(server.proc.pid).start()
    try:
        got = run_locust(plan, scenario, name, url, out, progress_head, t0)
    finally:
        if server_watch is not None:
            server_watch.stop()
        died = server is not None and not server.alive()
        if server is not None:
            code = server.stop()
            row["server_exit"] = code
            row["stderr_log"] = str(server.stderr_path.relative_to(out))
    records = got.pop("records")
    window = got.pop("window")
    row.update(got)
    if died:
        row["error"] = f"target died during the run (exit status {row.get('server_exit')})"
        row["stderr_tail"] = tail(server.stderr_path) if server else ""
    row.update(evidence.facts(records))
    if server_watch is None:
        row["server_cpu_cores"] = "not measured: external host"
    else:
        row["server_cpu_cores"] = server_watch.cores(*window) if window else None
    gen = row.get("generator_cpu")
    row["generator_saturated"] = bool((gen is not None and gen >= SATURATED) or row.get("generator_warned"))
    if scenario == "io":
        ceiling = evidence.io_ceiling(plan.users, plan.sleep_s, capacity)
        row["io_ceiling"] = ceiling
        row["io_efficiency"] = (row["rps"] / ceiling) if ceiling and row.get("rps") is not None else None
    if not row["error"] and row.get("requests") is None:
        row["error"] = f"locust produced no statistics (exit status {row['locust_exit']})"
    seen = row.get("models_seen") or []
    if seen and seen != [name]:
        row["notes"].append(f"X-Server-Model said {', '.join(seen)}")
    if row.get("requests") and not row.get("with_identity"):
        row["notes"].append("no identity headers in the responses: pids/threads/in-flight unknown")
    row["answer"] = evidence.answer(name, scenario, row)
    status = "FAILED -- " + row["error"] if row["error"] else f"{row.get('rps') or 0:.1f} req/s"
    print(f"{progress_head}: done, {status}", flush=True)
    return row


# --------------------------------------------------------------------------- environment


def git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {}
    for dist in ("wsgi-lab", "flask", "werkzeug", "gunicorn", "h11", "locust", "psutil", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def environment(plan: Plan, started: str, finished: str) -> dict:
    return {
        "started": started,
        "finished": finished,
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "git_commit": git_commit(),
        "versions": versions(),
        "argv": plan.argv,
        "parameters": plan.as_dict(),
        "locustfile": str(LOCUSTFILE.relative_to(ROOT)),
    }


# --------------------------------------------------------------------------- main


def run(plan: Plan) -> int:
    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    runs = plan.runs
    print(
        f"wsgi-lab compare: {len(runs)} run(s) of {plan.duration} s, {plan.users} users -> {out}",
        flush=True,
    )
    rows = []
    for i, (scenario, name) in enumerate(runs, 1):
        row = measure(plan, scenario, name, i, len(runs), out, t0)
        row.setdefault("answer", evidence.answer(name, scenario, row))
        rows.append(row)
    finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    env = environment(plan, started, finished)
    from loadtest import report  # matplotlib is slow to import: not for a usage error

    (out / "env.json").write_text(json.dumps(env, indent=2, default=str) + "\n", encoding="utf-8")
    report.write_all(out, rows, env)
    failed = [r for r in rows if r["error"]]
    print(f"wrote {out}/report.html ({time.monotonic() - t0:.0f} s)", flush=True)
    for r in rows:
        print(f"  {r['scenario']:<6} {r['answer']}", flush=True)
    if failed:
        print(f"{len(failed)} run(s) failed: " + ", ".join(f"{r['scenario']}/{r['target']}" for r in failed))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args, argv)
    except UsageError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return run(plan)


if __name__ == "__main__":
    sys.exit(main())
