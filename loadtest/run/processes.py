"""Probing and stopping server processes: the helpers the target runner (``local.py``) and the tests share.

- ``free_port`` / ``port_free``: a 127.0.0.1 port to bind, or whether one is taken.
- ``pinned_to``: the ``preexec_fn`` that pins a child (a server, locust) to some cores.
- ``wait_http``: until the process answers HTTP on a URL (any status counts: a
  bring-your-own app without ``/health`` answers 404 and is serving all the same),
  or it exits, or time runs out.
- ``session_members``: the processes left in a session (a forked worker that
  outlived its parent), to be stopped by their own pids.
- ``tail``: the end of a log, with the first exception line if it scrolled out.

What this module does not know: which server it runs, or what a target is.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

STDERR_TAIL_LINES = 12
POLL_S = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_status(url: str, timeout: float) -> int | None:
    """Status of ``GET url`` if anything answers HTTP, else None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, http.client.HTTPException):
        return None


def pinned_to(cores: Sequence[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that sets the child's CPU affinity to ``cores`` (None: leave it to the scheduler)."""
    return None if cores is None else (lambda: os.sched_setaffinity(0, set(cores)))


def wait_http(url: str, gone: Callable[[], str | None] | None, timeout: float) -> tuple[int | None, str]:
    """(HTTP status of the first answer, "") once ``url`` answers; (None, why not) otherwise.

    ``gone()`` says why the server can no longer answer (it exited), None while it runs.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        why = gone() if gone is not None else None
        if why is not None:
            return None, why
        status = http_status(url, timeout=1.0)
        if status is not None:
            return status, ""
        time.sleep(POLL_S)
    return None, f"did not answer HTTP on {url} within {timeout:g} s"


def session_members(session_id: int) -> list[psutil.Process]:
    """Live processes of a session other than this one."""
    members = []
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if p.pid != os.getpid() and os.getsid(p.pid) == session_id:
                members.append(p)
    return members


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
