"""The shapes a registry target can take: how many worker processes, how many threads each.

Found from the registry itself, so a target added there joins the search with
no change here.  A *knob* is an option that sets processes or threads; a target
has one when its registry options carry it (``--workers 4``) or when appending
it changes the target's capacity rule (``lab-event``'s ``--threads``, whose
default of 8 is implicit).  The knob is written the way the target's options
write it (``--threads=4`` stays ``--threads=N``), appended to the options (the
last value of an option wins, as ``--target-args`` overrides do) -- or, where the
options already set it, replaced in place, so the deploy command says it once.

A target whose capacity grows with its connections (a thread or greenlet per
connection) has ``threads=None``: no thread knob, as many as requests in flight.

A family may carry a limit on requests in flight (``--max-in-flight``: the database
connections a deployment may hold): a grid shape whose slots exceed it is capped
where the server has a knob for it (``CAP_FLAGS``: gunicorn's greenlet workers'
``--worker-connections``, granian's ``--backpressure``, both per worker), else pruned
(``fit``); a thread or greenlet per connection with no such knob is unbounded, so pruned.

Policy choices: worker counts from ``WORKER_STEPS`` and thread counts from
``THREAD_STEPS`` (a geometric grid; refinement fills in between).
What this module does not know: what a shape costs or how fast it is.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from loadtest.registry import targets
from loadtest.registry.appspec import AppSpec
from loadtest.registry.targets import Target

PROCESS_FLAGS = ("-w", "--workers", "--processes")
THREAD_FLAGS = ("--threads", "--blocking-threads")
CLASS_FLAGS = ("--worker-class", "-k", "--mode")
WORKER_STEPS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64)
THREAD_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
PROBE_USERS = 10_000  # a user count no fixed pool reaches: capacity that equals it grows per connection
DEPLOY_BIND = "0.0.0.0:8000"
# Options the registry sets for measuring (quick stops between candidates), not for production:
# the deploy command leaves them out, so the server's own default timeouts apply.
MEASURING_ONLY = (targets.GRACEFUL[:2], targets.GRANIAN[4:6])
# gunicorn's heartbeat files: in memory, so the root filesystem can be read-only.
GUNICORN_TMP = ("--worker-tmp-dir", "/dev/shm")
BASELINE_TARGET = "gunicorn-sync"  # the folklore baseline: sync workers, (2 x cores) + 1
# How a shape holds more requests at once: the kinds the search measures at least once each.
KINDS = ("processes", "threads", "greenlets", "native threads")
NATIVE_THREADED = ("granian",)  # servers whose own (Rust/C) threads own the sockets
GREENLET_CLASSES = ("gevent", "eventlet")
FORKING_CLASSES = ("forking",)  # a process per connection: processes, however many connections
# The option that bounds the requests one worker takes at once, per server (and worker class).
CAP_FLAGS = {("gunicorn", "gevent"): "--worker-connections", ("gunicorn", "eventlet"): "--worker-connections",
             ("granian", None): "--backpressure"}  # fmt: skip


def flag_in(args: tuple[str, ...], flags: tuple[str, ...]) -> str | None:
    """The spelling of the first of ``flags`` the args use (``--threads`` or ``--threads=``), else None."""
    for arg in args:
        name, eq, _ = arg.partition("=")
        if name in flags:
            return name + eq
    return None


def option_value(args: tuple[str, ...], flags: tuple[str, ...]) -> str | None:
    """The last value given to any of ``flags``."""
    value = None
    for i, arg in enumerate(args):
        name, eq, rest = arg.partition("=")
        if name in flags:
            value = rest if eq else (args[i + 1] if i + 1 < len(args) else None)
    return value


def with_count(target: Target, flag: str, n: int) -> Target:
    """``target`` with ``flag`` set to ``n``: its value replaced where the options give it, else appended."""
    name = flag.rstrip("=")
    options = list(target.options)
    for i, arg in enumerate(options):
        if arg.partition("=")[0] != name:
            continue
        if "=" in arg:
            options[i] = f"{name}={n}"
        elif i + 1 < len(options):
            options[i + 1] = str(n)
        return replace(target, options=tuple(options))
    return target.with_args(f"{flag}{n}" if flag.endswith("=") else f"{flag} {n}")


def responds(target: Target, flag: str) -> bool:
    """Whether setting ``flag`` changes the target's capacity the way a count would."""
    a, b = (
        with_count(target, flag, 3).capacity(PROBE_USERS),
        with_count(target, flag, 5).capacity(PROBE_USERS),
    )
    return a is not None and b is not None and a != b and PROBE_USERS not in (a, b)


def knob(target: Target, flags: tuple[str, ...]) -> str | None:
    present = flag_in(target.args, flags)
    if present is not None:
        return present
    return next((f for f in flags if responds(target, f)), None)


@dataclass(frozen=True)
class Family:
    """One registry target and its knobs."""

    target: Target
    process_flag: str | None
    thread_flag: str | None
    per_connection: bool  # capacity grows with connections (thread/greenlet per connection)
    max_in_flight: int | None = None  # the most requests the deployment may hold at once (None: no limit)

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def server(self) -> str:
        return self.target.kind

    @property
    def worker_class(self) -> str:
        declared = option_value(self.target.args, CLASS_FLAGS)
        if declared:
            return declared
        if self.thread_flag:
            return "threads"
        return "per-connection" if self.per_connection else "processes"

    @property
    def kind(self) -> str:
        """Which of ``KINDS`` holds this family's requests in flight."""
        if self.server in NATIVE_THREADED:
            return "native threads"
        if self.worker_class in GREENLET_CLASSES:
            return "greenlets"
        if self.worker_class in FORKING_CLASSES:
            return "processes"
        return "threads" if self.thread_flag or self.per_connection else "processes"

    @property
    def cap_flag(self) -> str | None:
        """The option that bounds one worker's requests in flight (``CAP_FLAGS``), if the server has one."""
        return CAP_FLAGS.get((self.server, self.worker_class), CAP_FLAGS.get((self.server, None)))


def family(target: Target, max_in_flight: int | None = None) -> Family:
    per_connection = target.capacity(PROBE_USERS) == PROBE_USERS
    return Family(
        target, knob(target, PROCESS_FLAGS), knob(target, THREAD_FLAGS), per_connection, max_in_flight
    )


@dataclass(frozen=True)
class Shape:
    """A candidate: a family with a worker and thread count (threads None: one per connection)."""

    family: Family
    workers: int
    threads: int | None
    cap: int | None = None  # requests one worker takes at once, through the family's cap_flag (None: no cap)

    @property
    def key(self) -> str:
        if self.threads is None and self.cap:  # a greenlet per connection, at most cap of them
            return f"{self.family.name} w{self.workers} c{self.cap}"
        t = "conn" if self.threads is None else str(self.threads)
        return f"{self.family.name} w{self.workers} t{t}" + (f" c{self.cap}" if self.cap else "")

    @property
    def slots(self) -> int | None:
        """Requests the shape holds at once (workers x threads, at most the cap); None: one per connection."""
        per = [n for n in (self.threads, self.cap) if n is not None]
        return self.workers * min(per) if per else None

    def target(self) -> Target:
        t = self.family.target
        if self.family.process_flag:
            t = with_count(t, self.family.process_flag, self.workers)
        if self.family.thread_flag and self.threads is not None:
            t = with_count(t, self.family.thread_flag, self.threads)
        if self.cap is not None and self.family.cap_flag:
            t = with_count(t, self.family.cap_flag, self.cap)
        return replace(t, name=self.family.name)

    def deploy_command(self, app: str) -> str:
        """The command line to deploy with: the user's own app as this server takes it, on all interfaces.

        A factory with arguments, which only gunicorn calls itself, is named by its module:attr
        (the page says the server needs a module that calls it).
        """
        host, port = DEPLOY_BIND.split(":")
        spec = AppSpec.parse(app)
        form = spec.server_form(self.family.server) or [spec.importable]
        target = self.target().with_args(shlex.join(form[:-1])) if len(form) > 1 else self.target()
        argv = target.command(form[-1], int(port), host=host)
        if argv[:2] == [sys.executable, "-m"]:
            argv = ["python", "-m", *argv[2:]]
        elif Path(argv[0]).parent == Path(sys.executable).parent:
            argv = [Path(argv[0]).name, *argv[1:]]  # a console script of this environment (uwsgi)
        return shlex.join(production(argv, self.family.server))


def production(argv: list[str], server: str) -> list[str]:
    """The command as a team runs it: without the registry's measuring-only options; gunicorn's
    worker heartbeat files in /dev/shm (a read-only root filesystem). Applying it twice changes nothing."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if tuple(argv[i : i + 2]) in MEASURING_ONLY:
            i += 2
            continue
        out.append(argv[i])
        i += 1
    if server == "gunicorn" and GUNICORN_TMP[0] not in out:
        app = next((j for j in range(len(out) - 1, 0, -1) if not out[j].startswith("-")), len(out))
        out[app:app] = list(GUNICORN_TMP)
    return out


def grid(f: Family, max_workers: int) -> list[Shape]:
    """Every grid shape of the family (one when it has no knobs), before any in-flight limit."""
    workers = [w for w in WORKER_STEPS if w <= max_workers] if f.process_flag else [current_workers(f)]
    if f.per_connection:
        return [Shape(f, w, None) for w in workers]
    threads = list(THREAD_STEPS) if f.thread_flag else [fixed_slots(f)]
    return [Shape(f, w, t) for w in workers for t in threads]


def fit(shape: Shape) -> tuple[Shape | None, str]:
    """The shape within its family's ``max_in_flight``: as it is, capped, or None (pruned), and why."""
    limit = shape.family.max_in_flight
    n = shape.slots
    if limit is None or (n is not None and n <= limit):
        return shape, ""
    held = "a thread or greenlet per connection" if n is None else f"{n} requests in flight"
    flag = shape.family.cap_flag
    if flag and shape.workers <= limit:
        per = limit // shape.workers
        return replace(shape, cap=per), f"capped: {held} > --max-in-flight {limit}; {flag} {per} per worker"
    return None, f"pruned: {held} > --max-in-flight {limit}" + ("" if flag else " and no option caps it")


def within_limit(found: list[Shape]) -> list[Shape]:
    """The shapes fitted to their family's limit (``fit``), pruned ones left out, each once."""
    out: dict[tuple, Shape] = {}
    for shape in found:
        fitted, _ = fit(shape)
        if fitted is not None:
            out.setdefault((fitted.family.name, fitted.workers, fitted.slots), fitted)
    return list(out.values())


def shapes(f: Family, max_workers: int) -> list[Shape]:
    """Every grid shape of the family within its in-flight limit (one when it has no knobs)."""
    return within_limit(grid(f, max_workers))


def limit_summary(fams: list[Family], max_workers: int) -> dict[str, object]:
    """What ``--max-in-flight`` did to the grid: how many shapes kept, capped and pruned, with examples."""
    kept = capped = pruned = 0
    examples: dict[str, str] = {}
    for f in fams:
        for shape in grid(f, max_workers):
            fitted, why = fit(shape)
            if not why:
                kept += 1
                continue
            verdict = why.split(":", 1)[0]
            capped, pruned = (capped + 1, pruned) if fitted is not None else (capped, pruned + 1)
            examples.setdefault(f"{f.name} {verdict}", f"{shape.key}: {why}")
    limit = next((f.max_in_flight for f in fams if f.max_in_flight is not None), None)
    return {"max_in_flight": limit, "kept": kept, "capped": capped, "pruned": pruned,
            "examples": list(examples.values())}  # fmt: skip


def current_workers(f: Family) -> int:
    value = option_value(f.target.args, PROCESS_FLAGS)
    return int(value) if value and value.isdigit() else 1


def fixed_slots(f: Family) -> int:
    """Requests in flight per worker for a family without a thread knob (a sync worker: 1)."""
    total = f.target.capacity(PROBE_USERS) or 1
    return max(total // max(current_workers(f), 1), 1)


def families(names: list[str], max_in_flight: int | None = None) -> list[Family]:
    return [family(targets.TARGETS[n], max_in_flight) for n in names]


def baseline(cpus: float, max_in_flight: int | None = None) -> Shape:
    """gunicorn's folklore: sync workers, (2 x cores) + 1 (a 1.5-core quota: 4), at most the limit."""
    workers = round(2 * cpus) + 1
    limited = family(targets.TARGETS[BASELINE_TARGET], max_in_flight)
    return Shape(limited, min(workers, max_in_flight or workers), 1)


def neighbours(shape: Shape, max_workers: int) -> list[Shape]:
    """Shapes one grid step away: workers up/down a step, threads doubled/halved."""
    out = []
    f = shape.family
    if f.process_flag:
        steps = [w for w in WORKER_STEPS if w <= max_workers]
        if shape.workers not in steps:
            steps = sorted({*steps, shape.workers})
        i = steps.index(shape.workers)
        out += [replace(shape, workers=steps[j]) for j in (i - 1, i + 1) if 0 <= j < len(steps)]
    if f.thread_flag and shape.threads is not None:
        out += [replace(shape, threads=t) for t in (shape.threads // 2, shape.threads * 2) if t >= 1]
    return [n for n in within_limit([replace(o, cap=None) for o in out]) if n != shape]
