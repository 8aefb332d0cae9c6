"""The registry of server models wsgi-lab compares.

One entry per model: its name (also the ``X-Server-Model`` it reports and
the name the compose file's ``LAB_HOSTS`` uses), a one-line explanation, how
to start it locally on a given port, the compose service that runs it, and
its *capacity* -- how many requests it can have in flight, which is what
caps I/O-bound throughput.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

OUR_APP = "app:app"
# Bring-your-own apps are served through this wrapper, which adds the
# identity headers (see loadtest/byo.py); the real app comes from LAB_BYO_APP.
BYO_WRAPPER = "loadtest.byo:app"


@dataclass(frozen=True)
class Target:
    name: str
    explanation: str
    compose_service: str
    argv: Callable[[str, str, int], list[str]]  # (app, host, port) -> command line
    capacity: Callable[[int], int | None]  # users -> max requests in flight (None: unknown)

    def command(self, app: str, port: int, host: str = "127.0.0.1") -> list[str]:
        return self.argv(app, host, port)


def lab(mode: str) -> Callable[[str, str, int], list[str]]:
    def argv(app: str, host: str, port: int) -> list[str]:
        return [sys.executable, "-m", "server", "--mode", mode, "--bind", f"{host}:{port}", app]

    return argv


def gunicorn(*options: str) -> Callable[[str, str, int], list[str]]:
    def argv(app: str, host: str, port: int) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", *options, app]

    return argv


def flask_dev(threaded: bool) -> Callable[[str, str, int], list[str]]:
    """Our app: exactly ``app.run()`` (python -m app).

    Other apps: werkzeug's run_simple, which is what app.run calls.
    """

    def argv(app: str, host: str, port: int) -> list[str]:
        flag = [] if threaded else ["--no-threads"]
        if app == OUR_APP:
            return [sys.executable, "-m", "app", "--host", host, "--port", str(port), *flag]
        return [sys.executable, "-m", "loadtest.devserver", "--host", host, "--port", str(port), *flag, app]

    return argv


def unbounded(users: int) -> int:
    return users


def fixed(n: int) -> Callable[[int], int]:
    return lambda _users: n


# --no-control-socket: gunicorn 27 otherwise binds ~/.gunicorn/gunicorn.ctl, which
# two gunicorns on one machine (a comparison next to a test run) would fight over.
GRACEFUL = ("--graceful-timeout", "5", "--no-control-socket")

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "lab-single",
            "our server, one connection at a time in the main thread: everyone else waits",
            "lab-single",
            lab("single"),
            fixed(1),
        ),
        Target(
            "lab-threaded",
            "our server, a thread per connection: I/O overlaps, Python code shares one GIL",
            "lab-threaded",
            lab("threaded"),
            unbounded,
        ),
        Target(
            "lab-forking",
            "our server, a forked process per connection: separate GILs, uses every core",
            "lab-forking",
            lab("forking"),
            unbounded,
        ),
        Target(
            "gunicorn-sync",
            "gunicorn -w 4 (sync): 4 pre-forked processes, one request each at a time",
            "gunicorn",
            gunicorn("--worker-class", "sync", "--workers", "4", *GRACEFUL),
            fixed(4),
        ),
        Target(
            "gunicorn-gthread",
            "gunicorn -w 2 --threads 4 (gthread): 2 processes x 4 threads = 8 in flight",
            "gunicorn-gthread",
            gunicorn("--worker-class", "gthread", "--workers", "2", "--threads", "4", *GRACEFUL),
            fixed(8),
        ),
        Target(
            "flask-dev",
            "Flask's app.run() (werkzeug, threaded=True since Flask 1.0): a thread per request",
            "flask-dev",
            flask_dev(threaded=True),
            unbounded,
        ),
        Target(
            "flask-dev-nothreads",
            "app.run(threaded=False), the Flask 0.12 default: one request at a time",
            "",
            flask_dev(threaded=False),
            fixed(1),
        ),
    )
}


def capacity(name: str, users: int) -> int | None:
    target = TARGETS.get(name)
    return target.capacity(users) if target else None


def explanation(name: str) -> str:
    target = TARGETS.get(name)
    return target.explanation if target else "external server (not in the registry)"
