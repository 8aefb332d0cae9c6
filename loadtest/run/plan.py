"""What a comparison will do, from its command line: argument checking and the plan.

Every bad flag is one line naming the problem, exit status 2, before anything
starts (``UsageError`` for checks argparse cannot make).  Stories are ready-made
experiments; explicit flags override their values.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.registry import targets
from loadtest.registry.hosts import parse_hosts
from loadtest.registry.scenarios import (
    SCENARIO_CLASSES,
    SLOW_CLIENTS,
    SLOW_HEAD_START_S,
    SLOW_NORMAL_TIMEOUT_S,
)
from loadtest.run import team as teams
from loadtest.run.processes import port_free
from loadtest.run.runner import START_TIMEOUT_S
from loadtest.run.shim import staged
from server.oneline import OneLineParser

MAX_DURATION_S = 3600
MAX_ROUNDS = 100
MAX_USERS = 10_000
SEED_LIMIT = 2**31
DEFAULT_WARMUP_S = 1.0

# The default story: io then cpu at 10 users, 3 rounds of 5 s (1 s warm-up, 4 s measured)
# over the targets that show the models' differences on this app -- one per concurrency
# idea (one at a time, thread per connection, process per connection, fixed process pool,
# process x thread pool, event loop + threads) plus the reference, app.run(). It took
# 266 s and 267 s (about 4.5 minutes) on 2 cores when last measured (docs/compare.md, `make compare`);
# `--story full` runs every registry target (about 7 minutes for the 12 before granian
# and uWSGI, not re-timed; they add 2 scenarios x 3 rounds x 5 s of load each).
DEFAULT_STORY_TARGETS = [
    "lab-single",
    "lab-threaded",
    "lab-forking",
    "gunicorn-sync",
    "gunicorn-gthread",
    "flask-dev",
    "lab-prefork",
    "lab-event",
]
STORIES: dict[str, dict] = {
    "default": {
        "scenarios": ["io", "cpu"],
        "users": [10],
        "duration": 5,
        "rounds": 3,
        "targets": DEFAULT_STORY_TARGETS,
    },
    "full": {
        "scenarios": ["io", "cpu"],
        "users": [10],
        "duration": 5,
        "rounds": 3,
        "targets": list(targets.TARGETS),
    },
}


class UsageError(Exception):
    """A bad argument: reported as one line, exit status 2."""


def duration_arg(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(s|m)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: expected whole seconds like 10, 10s or 2m")
    seconds = int(match.group(1)) * (60 if match.group(2) == "m" else 1)
    if not 1 <= seconds <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: must be 1 s to {MAX_DURATION_S} s")
    return seconds


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def seconds(text: str, expected: str = "seconds") -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def rounds_arg(text: str) -> int:
    value = positive_int(text)
    if value > MAX_ROUNDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_ROUNDS} rounds, got {value}")
    return value


def users_arg(text: str) -> list[int]:
    """``10`` or a sweep ``1,2,4,8``: distinct whole numbers 1..MAX_USERS, in the order given."""
    values = []
    for item in text.split(","):
        try:
            value = int(item.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected whole numbers like 10 or 1,2,4, got {text!r}"
            ) from None
        if not 1 <= value <= MAX_USERS:
            raise argparse.ArgumentTypeError(f"user counts must be 1 to {MAX_USERS}, got {value}")
        if value in values:
            raise argparse.ArgumentTypeError(f"user count {value} appears twice in {text!r}")
        values.append(value)
    return values


def seed_arg(text: str) -> int:
    value = whole_number(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be 0 to {SEED_LIMIT - 1}, got {value}")
    return value


def processes_arg(text: str) -> int | None:
    """``auto`` (None) or a number of locust worker processes."""
    return None if text == "auto" else positive_int(text)


def positive_float(text: str) -> float:
    value = seconds(text, "a number")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def warmup_arg(text: str) -> float:
    value = seconds(text)
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"must be 0 to 60 seconds, got {text!r}")
    return value


def settle_arg(text: str) -> float:
    value = seconds(text)
    if not 0 <= value <= 300:
        raise argparse.ArgumentTypeError(f"must be 0 to 300 seconds, got {text!r}")
    return value


def port_arg(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(targets.TARGETS)
    p = OneLineParser(
        prog="python -m loadtest.compare",
        description="Run the same locust scenario against several WSGI server models and write a report.",
        epilog=f"targets: {names}",
    )
    add = p.add_argument
    add(
        "--story",
        choices=sorted(STORIES),
        help="a ready-made experiment (default story: io then cpu, 3 rounds)",
    )
    add("--targets", help="comma-separated target names (default: all)")
    add(
        "--scenario",
        choices=sorted(SCENARIO_CLASSES),
        help="hello (/), io (/sleep), cpu (/cpu), mixed, slow (slow clients + GET /)",
    )
    add("--users", type=users_arg, help="concurrent locust users, or a sweep like 1,2,4,8 (default 10)")
    add("--spawn-rate", type=positive_float, help="users started per second (default: all at once)")
    add("--duration", type=duration_arg, help="seconds of load per run, warm-up included (default 10)")
    add(
        "--warmup",
        type=warmup_arg,
        default=DEFAULT_WARMUP_S,
        help="seconds dropped from each run (default 1)",
    )
    add("--rounds", type=rounds_arg, help="measure every target N times, interleaved (default 1)")
    add("--seed", type=seed_arg, help="seed of the per-round target order (default: random, recorded)")
    add("--processes", type=processes_arg, default=None, help="locust worker processes, or auto (default)")
    add(
        "--target-args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="append ARGS to a registry target's options, e.g. 'gunicorn-sync=--workers 1' (repeatable)",
    )
    add("--sleep-s", type=float, default=0.5, help="seconds per /sleep request (default 0.5)")
    add("--cpu-ms", type=float, default=20.0, help="CPU ms per /cpu request (default 20)")
    add("--hello-path", default="/", help="path the hello scenario requests (default /)")
    add(
        "--slow-clients",
        type=int,
        default=SLOW_CLIENTS,
        help=f"slow scenario: connections held by slow clients besides --users (default {SLOW_CLIENTS})",
    )
    add("--out", type=Path, help="output directory (default results/<UTC timestamp>)")
    add(
        "--app",
        default=targets.OUR_APP,
        help="the app as gunicorn takes it: module:app, module:factory('x'), module (default: demo)",
    )
    add("--chdir", type=Path, help="where the app imports from (default: the current directory)")
    add("--env", action="append", default=[], metavar="KEY=VALUE", help="set for the app (repeatable)")
    add("--env-file", type=Path, help="a dotenv file of variables for the app (--env wins)")
    add("--hosts", help="name=url,... of servers already running (no local start)")
    add("--port", type=port_arg, help="serve every local target on this port, one at a time")
    add(
        "--startup-timeout",
        type=positive_float,
        default=START_TIMEOUT_S,
        help="seconds a target gets to answer",
    )
    add(
        "--settle",
        type=settle_arg,
        default=0.0,
        help="after the servers start, wait up to this many seconds for the load average to come"
        " within the cores, so their start-up is not judged as a busy machine (default 0)",
    )
    add(
        "--venv",
        type=Path,
        help="run the local targets with this virtual environment's python (e.g. a free-threaded 3.14t)",
    )
    return p


@dataclass
class Plan:
    scenarios: list[str]
    targets: list[str]
    users: list[int]
    spawn_rate: float | None
    duration: int
    warmup: float
    rounds: int
    seed: int
    processes: int | None
    target_args: dict[str, str]
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
    slow_clients: int = SLOW_CLIENTS
    venv: Path | None = None
    settle_s: float = 0.0
    team: teams.Team = field(default_factory=teams.Team)  # the app's spec, directory, environment
    skipped: dict[str, str] = field(default_factory=dict)  # targets --venv lacks -> the line installing them

    @property
    def python(self) -> Path:
        """The interpreter that runs the local targets with ``--venv`` (``bin/python`` inside it)."""
        return (self.venv or Path()) / "bin" / "python"

    def target(self, name: str) -> targets.Target | None:
        """The registry entry with this plan's overrides; None for an external host not in the registry."""
        base = targets.TARGETS.get(name)
        if base is None or name not in self.target_args:
            return base
        return base.with_args(self.target_args[name])

    def capacity(self, name: str, users: int) -> int | None:
        target = self.target(name)
        return target.capacity(users) if target else None

    def as_dict(self) -> dict:
        d = {k: v for k, v in vars(self).items() if k not in ("argv", "team")}
        d["out"] = str(self.out)
        d["venv"] = str(self.venv) if self.venv else None
        # the variables' names only: their values (secrets, often) stay out of the results
        d["chdir"] = str(self.team.chdir) if self.team.chdir else None
        d["env"] = sorted(self.team.env)
        d["env_file"] = str(self.team.env_file) if self.team.env_file else None
        return d


def parse_target_args(items: list[str], names: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, args = item.partition("=")
        name = name.strip()
        if not sep or not name or not args.strip():
            raise UsageError(f"--target-args: expected NAME=ARGS, got {item!r}")
        if name not in targets.TARGETS:
            raise UsageError(
                f"--target-args: unknown target {name!r}; choose from: {', '.join(targets.TARGETS)}"
            )
        if name not in names:
            raise UsageError(f"--target-args: {name} is not among the targets of this comparison")
        try:
            targets.TARGETS[name].with_args(args)
        except ValueError as exc:
            raise UsageError(f"--target-args: {name}: {exc}") from None
        overrides[name] = " ".join(filter(None, (overrides.get(name), args.strip())))
    return overrides


def target_names(args: argparse.Namespace, story: dict, hosts: dict[str, str]) -> list[str]:
    if args.targets is not None:
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
    return names


def check_hosts(spec: str | None) -> dict[str, str]:
    if spec is None:
        return {}
    try:
        hosts = parse_hosts(spec)
    except ValueError as exc:
        raise UsageError(f"--hosts: {exc}") from None
    if not hosts:
        raise UsageError("--hosts: no name=url entries given")
    return hosts


def check_ranges(args: argparse.Namespace, hosts: dict[str, str], duration: int) -> None:
    if hosts and args.app != targets.OUR_APP:
        raise UsageError("--app and --hosts do not mix: running servers already serve their own app")
    if hosts and args.target_args:
        raise UsageError("--target-args and --hosts do not mix: running servers keep their own options")
    if not 0 <= args.sleep_s <= 30:
        raise UsageError(f"--sleep-s must be between 0 and 30, got {args.sleep_s:g}")
    if not 0 <= args.cpu_ms <= 10_000:
        raise UsageError(f"--cpu-ms must be between 0 and 10000, got {args.cpu_ms:g}")
    if hosts and args.scenario == "slow":
        raise UsageError("--scenario slow and --hosts do not mix: what slow clients hold is sampled locally")
    slow_minimum = SLOW_HEAD_START_S + SLOW_NORMAL_TIMEOUT_S
    if args.scenario == "slow" and duration <= slow_minimum:
        raise UsageError(
            f"--scenario slow needs --duration above {slow_minimum:g} s: normal users start"
            f" {SLOW_HEAD_START_S:g} s in and give up on a request after {SLOW_NORMAL_TIMEOUT_S:g} s,"
            " so a shorter run records nothing from a server that never answers"
        )
    if args.slow_clients < 1:
        raise UsageError(f"--slow-clients must be at least 1, got {args.slow_clients}")
    if args.warmup + 1 > duration:
        raise UsageError(f"--warmup {args.warmup:g} s leaves under 1 s of a {duration} s run to measure")
    if args.port is not None and not hosts and not port_free(args.port):
        raise UsageError(f"port {args.port} is already in use on 127.0.0.1")
    check_venv(args.venv, hosts)


def check_venv(venv: Path | None, hosts: dict[str, str]) -> None:
    if venv is None:
        return
    if hosts:
        raise UsageError("--venv and --hosts do not mix: running servers keep their own interpreter")
    python = venv / "bin" / "python"
    if not os.access(python, os.X_OK):
        raise UsageError(f"--venv {venv}: no executable {python}")


def make_plan(args: argparse.Namespace, argv: list[str], reachable) -> Plan:
    """The plan, or UsageError; ``reachable(url) -> problem or None`` checks ``--hosts``."""
    story = STORIES[args.story] if args.story else {}
    hosts = check_hosts(args.hosts)
    names = target_names(args, story, hosts)
    duration = args.duration or story.get("duration", 10)
    check_ranges(args, hosts, duration)
    overrides = parse_target_args(args.target_args, names)
    team, skipped = team_for(args, names, hosts)
    names = [n for n in names if n not in skipped]
    for name in names if hosts else []:
        problem = reachable(hosts[name])
        if problem:
            raise UsageError(f"--hosts: {name} at {hosts[name]} is unreachable ({problem})")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Plan(
        scenarios=[args.scenario] if args.scenario else story.get("scenarios", ["io"]),
        targets=names,
        users=args.users or story.get("users", [10]),
        spawn_rate=args.spawn_rate,
        duration=duration,
        warmup=args.warmup,
        rounds=args.rounds or story.get("rounds", 1),
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(SEED_LIMIT),
        processes=args.processes,
        target_args=overrides,
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
        slow_clients=args.slow_clients,
        venv=args.venv.resolve() if args.venv else None,
        settle_s=args.settle,
        team=team,
        skipped=skipped,
    )


def team_for(args: argparse.Namespace, names: list[str], hosts: dict[str, str]):
    """The team's settings, the app imported as a target will (not with ``--hosts``), what --venv lacks."""
    try:
        team = teams.team_from(args.app, args.chdir, args.env, args.env_file, args.venv)
        if hosts:
            return team, {}
        teams.check_app(team, staged())
        missing = teams.missing_servers(team, names)
    except teams.TeamError as exc:
        raise UsageError(str(exc)) from None
    if missing and len(missing) == len(names):
        first = next(iter(missing.values()))
        raise UsageError(f"--venv {args.venv}: none of the targets' servers is installed there ({first})")
    return team, missing
