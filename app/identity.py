"""Who served this request? The identity headers behind every timeline.

Each response carries the server model, the process id, the thread and the
start/end time of the request *as seen inside the app*.  The load tests and
the browser probe read nothing else, so every server model is observed the
same way, whatever it is.  The headers' names are ``loadtest.inserver.headers``'s, the one
declaration the bring-your-own wrapper and locust's recorder import too; this module computes
their values.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time

import psutil


def server_model(environ: dict) -> str:
    """Name the server model serving ``environ``.

    ``LAB_SERVER_MODEL`` wins (the compose file and the comparison runner set
    it); otherwise the model is derived from ``SERVER_SOFTWARE`` and from what
    the server declared about threads, so a bare ``gunicorn app:app`` still
    reports something truthful.
    """
    configured = os.environ.get("LAB_SERVER_MODEL", "").strip()
    if configured:
        return configured
    software = environ.get("SERVER_SOFTWARE", "").lower()
    threaded = bool(environ.get("wsgi.multithread"))
    if software.startswith("wsgi-lab"):
        # Our server says e.g. "wsgi-lab/0.1.0 threaded".
        parts = software.split()
        return f"lab-{parts[1]}" if len(parts) > 1 else "lab"
    if software.startswith("gunicorn"):
        # gevent and gthread workers both declare multithread; only gevent patches the socket module.
        if gevent_patched():
            return "gunicorn-gevent"
        return "gunicorn-gthread" if threaded else "gunicorn-sync"
    if software.startswith("werkzeug"):
        if environ.get("wsgi.multiprocess"):
            return "flask-dev-processes"
        return "flask-dev" if threaded else "flask-dev-nothreads"
    # waitress says "waitress"; anything else is named by its first word.
    return software.split("/")[0] or "unknown"


def gevent_patched() -> bool:
    """True in a process whose sockets gevent has monkey-patched (gunicorn -k gevent does)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("socket"))


def timestamp(t: float) -> str:
    """Unix time in seconds with microseconds, as the headers carry it."""
    return f"{t:.6f}"


class WorkerStats:
    """Per-process facts for ``/whoami`` and the pid for the headers.

    The pid is cached and refreshed in a forked child (``os.register_at_fork``):
    ``os.getpid()`` is a system call, and three of them per request showed up
    in the threaded server's profile.  A forked child also starts its request
    count afresh instead of inheriting its parent's.  The count is an
    ``itertools.count`` (its ``next`` is atomic under the GIL), not a lock that
    every thread would queue on.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.pid = os.getpid()
        self.requests = 0
        self._counter = itertools.count(1)

    def count_request(self) -> int:
        n = next(self._counter)
        self.requests = max(self.requests, n)  # threads may finish this line out of order
        return n

    @staticmethod
    def process_start_time() -> float:
        return psutil.Process().create_time()


def thread_label() -> str:
    """Thread name, which is what people recognise (MainThread, Thread-3 ...)."""
    return threading.current_thread().name


def now() -> float:
    return time.time()
