"""The registry of server models wsgi-lab compares: one declaration per target.

Each entry: its name (also the ``X-Server-Model`` it reports and the name the
compose file's ``LAB_HOSTS`` uses), a one-line explanation, the compose service
and host port that run it in Docker, how to start it locally, and the rule for
its *capacity* -- how many requests it can have in flight, which is what caps
I/O-bound throughput -- and its ``roles`` (``Role``: ours, native, demonstration,
baseline), which bench and tune read instead of lists of their own.

Capacity is derived from the options the target actually runs with, so an
override (``--target-args 'gunicorn-sync=--workers 1'``, appended to the
registry's options; the last value of an option wins) re-derives it.

``BENCH_VARIANTS`` are the same servers with other options, for ``make bench``
(``loadtest/bench/``): not in compose, not in a default comparison.

``tests/loadtest/test_registry.py`` checks docker-compose.yml against this registry.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from loadtest.registry.appspec import DEMO, DEMO_MODULE

# The demo app by its own name (``--app demo``, the default); ``app:app`` is a team's module.
OUR_APP = DEMO
# Bring-your-own apps are served through this wrapper, which adds the identity headers
# (see loadtest/inserver/byo.py); the real app comes from LAB_BYO_APP. In a team's
# environment the package is a staged copy under a unique name (loadtest/run/shim.py).
BYO_MODULE = "inserver.byo"
BYO_WRAPPER = f"loadtest.{BYO_MODULE}:app"


def byo_wrapper(package: str = "loadtest") -> str:
    return f"{package}.{BYO_MODULE}:app"


COMPOSE_PORT = 8000  # every server service listens on this port inside its container
COMPOSE_IMAGE = "wsgi-lab:latest"  # docker-compose.yml's one image: the app and every server it measures

# options -> requests in flight for ``users`` users (None: unknown)
Capacity = Callable[[dict[str, int], int], int | None]
# flag -> count name, for our server, gunicorn, waitress and Flask's dev server
COUNT_OPTIONS = {"-w": "workers", "--workers": "workers", "--threads": "threads", "--processes": "processes"}
# Servers whose flags mean something else: to uWSGI ``-w`` is the app module and
# ``--workers`` an alias of ``--processes``; granian counts its Python threads per worker.
COUNT_OPTIONS_BY_KIND: dict[str, dict[str, str]] = {
    "granian": {
        "--workers": "workers",
        "--blocking-threads": "blocking_threads",
        "--backpressure": "backpressure",
        "--backlog": "backlog",
    },
    "uwsgi": {
        "--processes": "processes",
        "-p": "processes",
        "--workers": "processes",
        "--threads": "threads",
        "--gevent": "gevent",
    },
}


def option_counts(args: Sequence[str], spellings: dict[str, str] = COUNT_OPTIONS) -> dict[str, int]:
    """Numeric worker/thread/process options in a command line; the last occurrence wins."""
    counts: dict[str, int] = {}
    items = list(args)
    for i, arg in enumerate(items):
        flag, eq, value = arg.partition("=")
        if flag not in spellings:
            continue
        if not eq:
            value = items[i + 1] if i + 1 < len(items) else ""
        try:
            counts[spellings[flag]] = int(value)
        except ValueError:
            counts.pop(spellings[flag], None)
    return counts


def per_user(_options: dict[str, int], users: int) -> int:
    return users


def fixed(n: int) -> Capacity:
    return lambda _options, _users: n


def counted(*names: str, default: int | None = None) -> Capacity:
    """Product of the named options (e.g. workers x threads); ``default`` for a missing one."""

    def capacity(options: dict[str, int], _users: int) -> int | None:
        total = 1
        for name in names:
            value = options.get(name, default)
            if value is None:
                return None
            total *= value
        return total

    return capacity


# granian 2.8's own defaults (granian/server/common.py): backlog 1024, backpressure =
# backlog // workers, and for WSGI blocking threads = backpressure // 2 -- 512 Python
# threads in a single worker when nobody says otherwise.
GRANIAN_DEFAULT_BACKLOG = 1024


def granian_capacity(options: dict[str, int], _users: int) -> int:
    """Workers x the requests each worker runs at once: its blocking threads, capped by its backpressure."""
    workers = max(1, options.get("workers", 1))
    backlog = max(128, options.get("backlog", GRANIAN_DEFAULT_BACKLOG))
    backpressure = options.get("backpressure") or backlog // workers
    threads = options.get("blocking_threads", max(1, backpressure // 2))
    return workers * min(threads, backpressure)


def uwsgi_capacity(options: dict[str, int], _users: int) -> int:
    """Processes x (gevent cores, else threads): uWSGI's cores per worker."""
    per_process = options.get("gevent") or options.get("threads", 1)
    return options.get("processes", 1) * per_process


class Role(StrEnum):
    """What a target is to the lab besides its concurrency model (``Target.roles``)."""

    OURS = "ours"  # our own server (server/): what make bench's goals and native ratios judge
    NATIVE = "native"  # its protocol work is not Python (Rust, C): make bench's near-limit anchors
    DEMONSTRATION = "demonstration"  # shows a model's limit (one at a time, a fork per connection,
    # the dev server): compared, never offered by make tune unless named
    BASELINE = "baseline"  # the folklore shape a recommendation is measured against (sync workers)


@dataclass(frozen=True)
class Target:
    name: str
    explanation: str
    compose_service: str
    host_port: int
    kind: str  # lab | gunicorn | flask-dev | waitress | granian | uwsgi: how the command line is built
    options: tuple[str, ...]
    capacity_rule: Capacity
    roles: frozenset[Role] = frozenset()
    extra: tuple[str, ...] = field(default=())  # per-run override, appended to options

    @property
    def args(self) -> tuple[str, ...]:
        return (*self.options, *self.extra)

    def with_args(self, text: str) -> Target:
        """This target with ``text`` (shell words) appended to its options."""
        return replace(self, extra=(*self.extra, *shlex.split(text)))

    def capacity(self, users: int) -> int | None:
        spellings = COUNT_OPTIONS_BY_KIND.get(self.kind, COUNT_OPTIONS)
        return self.capacity_rule(option_counts(self.args, spellings), users)

    def command(self, app: str, port: int, host: str = "127.0.0.1") -> list[str]:
        return BUILDERS[self.kind](app, host, port, list(self.args))


def lab(app: str, host: str, port: int, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "server", *args, "--bind", f"{host}:{port}", app]


def gunicorn(app: str, host: str, port: int, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", *args, app]


def flask_dev(app: str, host: str, port: int, args: list[str]) -> list[str]:
    """Our app: exactly ``app.run()`` (python -m app); other apps: run_simple, which app.run calls.

    The dev server module sits beside the wrapper that serves the app (a staged copy's, in a
    team's environment).
    """
    where = ["--host", host, "--port", str(port)]
    if app == DEMO_MODULE:
        return [sys.executable, "-m", "app", *where, *args]
    module, _, _ = app.partition(":")
    package = module[: -len(BYO_MODULE) - 1] if module.endswith("." + BYO_MODULE) else "loadtest"
    return [sys.executable, "-m", f"{package}.inserver.devserver", *where, *args, app]


def waitress(app: str, host: str, port: int, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "waitress", f"--listen={host}:{port}", *args, app]


def granian(app: str, host: str, port: int, args: list[str]) -> list[str]:
    where = ["--host", host, "--port", str(port)]
    return [sys.executable, "-m", "granian", "--interface", "wsgi", *where, *args, app]


def uwsgi(app: str, host: str, port: int, args: list[str]) -> list[str]:
    """The pyuwsgi wheel's ``uwsgi`` script beside this interpreter (an extension module has no ``-m``)."""
    script = str(Path(sys.executable).with_name("uwsgi"))
    return [script, "--http-socket", f"{host}:{port}", "--module", app, *args]


BUILDERS: dict[str, Callable[[str, str, int, list[str]], list[str]]] = {
    "lab": lab,
    "gunicorn": gunicorn,
    "flask-dev": flask_dev,
    "waitress": waitress,
    "granian": granian,
    "uwsgi": uwsgi,
}

# --no-control-socket: gunicorn 27 otherwise binds ~/.gunicorn/gunicorn.ctl, which
# two gunicorns on one machine (a comparison next to a test run) would fight over.
GRACEFUL = ("--graceful-timeout", "5", "--no-control-socket")
# granian: 2 processes x 4 Python threads, as gunicorn-gthread; its own default would be
# 512 blocking threads in one process. On SIGTERM it stops listening at once and finishes
# the requests it has accepted; a worker still busy 5 s later is killed (by default
# granian never kills one).
GRANIAN = ("--workers", "2", "--blocking-threads", "4", "--workers-kill-timeout", "5", "--no-ws")
# uWSGI 2.0 as deployed: SIGTERM -> gracefully_kill_them_all, so requests in flight
# finish (2.0 takes SIGTERM as a brutal reload, which re-executes the base python and,
# with pyuwsgi in a venv, exits 1; --die-on-term stops, but kills the workers with their
# requests -- measured with python -m loadtest.lifecycle: 6 of 6 in flight lost); --need-app (else it starts
# and answers 500 when the app fails to import); --strict (an unknown option is an
# error); --py-call-osafterfork (uWSGI forks in C: without it os.register_at_fork hooks
# never run in the workers, and every response would carry the master's pid);
# --enable-threads (Python threads started by the app run); --disable-logging (no
# access line per request, as gunicorn).
UWSGI = (
    "--master",
    "--processes",
    "4",
    "--hook-master-start",
    "unix_signal:15 gracefully_kill_them_all",
    "--need-app",
    "--strict",
    "--single-interpreter",
    "--py-call-osafterfork",
    "--enable-threads",
    "--disable-logging",
)

REGISTRY: tuple[Target, ...] = (
    Target(
        "lab-single",
        "our server, one connection at a time in the main thread: everyone else waits",
        "lab-single",
        8001,
        "lab",
        ("--mode", "single"),
        fixed(1),
        roles=frozenset({Role.OURS, Role.DEMONSTRATION}),
    ),
    Target(
        "lab-threaded",
        "our server, a thread per connection: I/O overlaps, Python code shares one GIL",
        "lab-threaded",
        8002,
        "lab",
        ("--mode", "threaded"),
        per_user,
        roles=frozenset({Role.OURS}),
    ),
    Target(
        "lab-forking",
        "our server, a forked process per connection: separate GILs, uses every core",
        "lab-forking",
        8003,
        "lab",
        ("--mode", "forking"),
        per_user,
        roles=frozenset({Role.OURS, Role.DEMONSTRATION}),
    ),
    Target(
        "gunicorn-sync",
        "gunicorn -w 4 (sync): 4 pre-forked processes, one request each at a time",
        "gunicorn",
        8004,
        "gunicorn",
        ("--worker-class", "sync", "--workers", "4", *GRACEFUL),
        counted("workers", default=1),
        roles=frozenset({Role.BASELINE}),
    ),
    Target(
        "gunicorn-gthread",
        "gunicorn -w 2 --threads 4 (gthread): 2 processes x 4 threads = 8 in flight",
        "gunicorn-gthread",
        8005,
        "gunicorn",
        ("--worker-class", "gthread", "--workers", "2", "--threads", "4", *GRACEFUL),
        counted("workers", "threads", default=1),
    ),
    Target(
        "flask-dev",
        "Flask's app.run() (werkzeug, threaded=True since Flask 1.0): a thread per request",
        "flask-dev",
        8006,
        "flask-dev",
        (),
        per_user,
        roles=frozenset({Role.DEMONSTRATION}),
    ),
    Target(
        "flask-dev-nothreads",
        "app.run(threaded=False), the Flask 0.12 default: one request at a time",
        "flask-dev-nothreads",
        8007,
        "flask-dev",
        ("--no-threads",),
        fixed(1),
        roles=frozenset({Role.DEMONSTRATION}),
    ),
    Target(
        "lab-prefork",
        "our server, -w 4 pre-forked processes sharing the listening socket, one request each at a time",
        "lab-prefork",
        8008,
        "lab",
        ("--mode", "prefork", "-w", "4"),
        counted("workers", default=1),
        roles=frozenset({Role.OURS}),
    ),
    Target(
        "lab-event",
        "our server, one event loop for the connections and 8 threads running the app",
        "lab-event",
        8009,
        "lab",
        ("--mode", "event"),
        counted("threads", default=8),
        roles=frozenset({Role.OURS}),
    ),
    Target(
        "gunicorn-gevent",
        "gunicorn -w 1 -k gevent: one process, a greenlet per connection (sleep is monkey-patched)",
        "gunicorn-gevent",
        8010,
        "gunicorn",
        ("--worker-class", "gevent", "--workers", "1", *GRACEFUL),
        per_user,
    ),
    Target(
        "waitress",
        "waitress: one asyncore loop for the connections, 4 threads running the app",
        "waitress",
        8011,
        "waitress",
        ("--threads=4",),
        counted("threads", default=4),
    ),
    Target(
        "flask-dev-processes",
        "app.run(processes=4): werkzeug forks a process per request, at most 4 at once",
        "flask-dev-processes",
        8012,
        "flask-dev",
        ("--processes", "4"),
        counted("processes", default=1),
        roles=frozenset({Role.DEMONSTRATION}),
    ),
    Target(
        "granian",
        "granian --workers 2 --blocking-threads 4: Rust threads own the sockets, 2 processes x 4 Python"
        " threads = 8 in flight (left to itself, up to 512 Python threads in one process)",
        "granian",
        8013,
        "granian",
        GRANIAN,
        granian_capacity,
        roles=frozenset({Role.NATIVE}),
    ),
    Target(
        "uwsgi",
        "uWSGI --master --processes 4: 4 pre-forked processes, one request each at a time"
        " (gunicorn -w 4's twin, in C)",
        "uwsgi",
        8014,
        "uwsgi",
        UWSGI,
        uwsgi_capacity,
        roles=frozenset({Role.NATIVE}),
    ),
)
TARGETS: dict[str, Target] = {t.name: t for t in REGISTRY}


def first_cpu() -> str:
    """The first CPU this process may use: where a pinned variant runs (the kernel moves wrk off it)."""
    allowed = getattr(os, "sched_getaffinity", None)
    return str(min(allowed(0))) if allowed else "0"


# Same servers, other options: make bench's fair pairs (2 worker processes each; an event
# loop with 4 threads against waitress's default 4 threads), the threaded mode pinned to one
# CPU, which shows what the GIL's hand-offs between cores cost (docs/server.md, one core for one GIL), and
# the single mode on h11 alone, which shows what the C parser saves.
BENCH_VARIANTS: dict[str, Target] = {
    t.name: t
    for t in (
        replace(
            TARGETS["gunicorn-sync"],
            name="gunicorn-sync-w2",
            explanation="gunicorn -w 2 (sync)",
            extra=("--workers", "2"),
        ),
        replace(
            TARGETS["lab-prefork"], name="lab-prefork-w2", explanation="our prefork, -w 2", extra=("-w", "2")
        ),
        replace(
            TARGETS["lab-threaded"],
            name="lab-threaded-pinned",
            explanation="lab-threaded pinned to one CPU (--cpu-affinity): the GIL changes hands on one core",
            extra=("--cpu-affinity", first_cpu()),
        ),
        replace(
            TARGETS["lab-single"],
            name="lab-single-h11",
            explanation="lab-single parsing with h11 (pure Python): what parsing in Python costs per request",
            extra=("--parser", "h11"),
        ),
        replace(
            TARGETS["lab-event"],
            name="lab-event-t4",
            explanation="our event loop, --threads 4",
            extra=("--threads", "4"),
        ),
    )
}


def lookup(name: str) -> Target | None:
    return TARGETS.get(name) or BENCH_VARIANTS.get(name)


def with_role(role: Role, names: Iterable[str] = TARGETS) -> tuple[str, ...]:
    """Those of ``names`` (targets or bench variants; default: the registry) that have ``role``, in order."""
    return tuple(name for name in names if (target := lookup(name)) is not None and role in target.roles)


def capacity(name: str, users: int) -> int | None:
    target = TARGETS.get(name)
    return target.capacity(users) if target else None


def explanation(name: str) -> str:
    target = TARGETS.get(name)
    return target.explanation if target else "external server (not in the registry)"
