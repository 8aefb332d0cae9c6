"""Who served this request? The identity headers behind every timeline.

Each response carries the server model, the process id, the thread, the
start/end time of the request *as seen inside the app*, the CPU time the
request itself used and which kind of lane ran it (an OS thread, or a greenlet
sharing one OS thread with others).  The load tests and the browser probe read
nothing else, so every server model is observed the same way, whatever it is.

Per-request CPU time, policy stated once (:class:`CpuClock`):

- On an OS thread it is ``time.thread_time_ns()`` at the end minus at the
  start: the kernel's CPU account of that thread.  Time spent waiting for the
  GIL is not CPU time, so a request that took turns on the GIL shows a long
  wall time and a short CPU time.
- Greenlets (gunicorn -k gevent) share one OS thread, so the thread's CPU clock
  also runs while *other* greenlets work.  Where greenlet switches can be
  traced (``greenlet.settrace``), the clock is charged to whichever greenlet was
  running between two switches, so each request gets its own share; where they
  cannot, the header is left out rather than report another request's work.

The headers' names are ``loadtest.inserver.headers``'s, the one declaration locust's
recorder imports too; this module computes their values.  It knows nothing of Flask:
``app/views.py`` and the bring-your-own wrapper (``loadtest/inserver/byo.py``) both call it.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time

try:
    import psutil
except ImportError:  # a team's environment without psutil: the same calls, read from /proc
    from . import procfs as psutil  # type: ignore[no-redef]

from .headers import (
    HEADER_CPU,
    HEADER_END,
    HEADER_LANE_ID,
    HEADER_LANE_KIND,
    HEADER_MODEL,
    HEADER_PID,
    HEADER_START,
    HEADER_THREAD,
    LANE_GREENLET,
    LANE_THREAD,
)


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
    if not software and "uwsgi.version" in environ:
        return "uwsgi"  # uWSGI's --http-socket sets no SERVER_SOFTWARE, only its own keys
    # waitress says "waitress", granian "Granian"; anything else is named by its first word.
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


def current_greenlet():
    """The running greenlet when gevent has patched this process, else None (plain OS threads)."""
    if not gevent_patched():
        return None
    greenlet = sys.modules.get("greenlet")
    return greenlet.getcurrent() if greenlet is not None else None


def lane() -> tuple[str, str]:
    """(kind, id) of what runs this request: ("thread", native id) or ("greenlet", hex id)."""
    current = current_greenlet()
    if current is not None:
        return LANE_GREENLET, f"{id(current):x}"
    return LANE_THREAD, str(threading.get_native_id())


class GreenletCpu:
    """CPU time per greenlet on one OS thread, charged at every switch (``greenlet.settrace``).

    Between two switches exactly one greenlet runs, so the thread's CPU clock
    advanced by that much for it.  Only greenlets inside a request are
    watched (``watch``/``forget``), so a table holds the requests in flight.
    One tracer and one table per OS thread, keyed by the native thread id:
    greenlet's trace function is per thread, and gevent turns
    ``threading.local`` into a per-greenlet store.  An earlier tracer is
    chained, not replaced.
    """

    def __init__(self) -> None:
        self.spent: dict[int, dict[int, int]] = {}  # native thread id -> greenlet id -> ns
        self.mark: dict[int, int] = {}  # native thread id -> thread_time_ns at the last switch

    def install(self) -> bool:
        """Trace this thread's switches (once); False when greenlet cannot be traced."""
        thread = threading.get_native_id()
        if thread in self.spent:
            return True
        greenlet = sys.modules.get("greenlet")
        if greenlet is None or not hasattr(greenlet, "settrace"):
            return False
        self.spent[thread] = {}
        self.mark[thread] = time.thread_time_ns()
        previous = greenlet.settrace(None)

        def trace(event, args):
            if event in ("switch", "throw"):
                self.charge(thread, args[0])
            if previous is not None:
                previous(event, args)

        greenlet.settrace(trace)
        return True

    def charge(self, thread: int, origin) -> None:
        """The greenlet switching away ran since the last switch: charge it that CPU time."""
        now = time.thread_time_ns()
        spent = self.spent[thread]
        key = id(origin)
        if key in spent:
            spent[key] += now - self.mark[thread]
        self.mark[thread] = now

    def watch(self, current) -> None:
        self.spent[threading.get_native_id()][id(current)] = 0

    def used_ns(self, current) -> int:
        """CPU ns charged to ``current`` since ``watch``, including the slice it is running now."""
        thread = threading.get_native_id()
        return self.spent[thread].get(id(current), 0) + time.thread_time_ns() - self.mark[thread]

    def forget(self, current) -> None:
        self.spent[threading.get_native_id()].pop(id(current), None)


greenlet_cpu = GreenletCpu()


class CpuClock:
    """The CPU time one request used, started and read on the request's own lane.

    ``start()`` at the start of the request, ``ms()`` at its end (same thread
    or greenlet); see the module's policy for greenlets.
    """

    def __init__(self) -> None:
        self.greenlet = current_greenlet()
        self.begun: int | None = None
        if self.greenlet is None:
            self.begun = time.thread_time_ns()
        elif greenlet_cpu.install():
            greenlet_cpu.watch(self.greenlet)
            self.begun = greenlet_cpu.used_ns(self.greenlet)

    def ms(self) -> float | None:
        """Milliseconds of CPU since the start; None where it cannot be measured per request."""
        if self.begun is None:
            return None
        if self.greenlet is None:
            return (time.thread_time_ns() - self.begun) / 1e6
        used = greenlet_cpu.used_ns(self.greenlet) - self.begun
        greenlet_cpu.forget(self.greenlet)
        return used / 1e6


def cpu_ms_text(ms: float) -> str:
    return f"{ms:.3f}"


def response_headers(model: str, pid: int, started: float, clock: CpuClock) -> list[tuple[str, str]]:
    """Every identity header of one response, ended now: the app and the byo wrapper both send these."""
    kind, lane_id = lane()
    headers = [
        (HEADER_MODEL, model),
        (HEADER_PID, str(pid)),
        (HEADER_THREAD, thread_label()),
        (HEADER_START, timestamp(started)),
        (HEADER_END, timestamp(now())),
        (HEADER_LANE_KIND, kind),
        (HEADER_LANE_ID, lane_id),
    ]
    cpu = clock.ms()
    if cpu is not None:
        headers.append((HEADER_CPU, cpu_ms_text(cpu)))
    return headers
