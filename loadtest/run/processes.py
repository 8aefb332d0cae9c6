"""Probing and stopping server processes: the helpers the target runner (``local.py``) and the tests share.

- ``free_port`` / ``port_free``: a 127.0.0.1 port to bind, or whether one is taken.
- ``pinned_to``: the ``preexec_fn`` that pins a child (a server, locust) to some cores.
- ``wait_http``: until the process answers HTTP on a URL (any status counts: a
  bring-your-own app without ``/health`` answers 404 and is serving all the same),
  or it exits, or time runs out.
- ``stop``: SIGTERM by pid, SIGKILL after a timeout, then any leftover process
  of its session (a forked worker that outlived its parent) by its own pid.

What this module does not know: which server it runs, or what a target is.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
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


def start(
    argv: list[str],
    log_dir: Path,
    stem: str,
    env: dict[str, str],
    cwd: Path | str,
    cores: Sequence[int] | None = None,
) -> subprocess.Popen:
    """``argv`` in a new session, stdout/stderr to ``log_dir/stem.stdout.log`` / ``.stderr.log``.

    ``cores``: CPU affinity set in the child before it executes ``argv``, so the
    process and everything it forks or spawns run only on those cores.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        (log_dir / f"{stem}.stdout.log").open("wb") as out,
        (log_dir / f"{stem}.stderr.log").open("wb") as err,
    ):
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=pinned_to(cores),
        )


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


def exited(proc: subprocess.Popen | None) -> Callable[[], str | None] | None:
    """``wait_http``'s ``gone`` for a process: why it can no longer answer, once it has exited."""
    if proc is None:
        return None

    def gone() -> str | None:
        return None if proc.poll() is None else f"exited with status {proc.returncode} before answering HTTP"

    return gone


def wait_healthy(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    """Until ``/health`` on 127.0.0.1:port says 200; raises RuntimeError/TimeoutError otherwise."""
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, problem = wait_http(url, exited(proc), max(deadline - time.monotonic(), 0.1))
        if status == 200:
            return
        if status is None and proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server {problem} ({url})")
        time.sleep(POLL_S)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:g} s")


def session_members(session_id: int) -> list[psutil.Process]:
    """Live processes of a session other than this one."""
    members = []
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if p.pid != os.getpid() and os.getsid(p.pid) == session_id:
                members.append(p)
    return members


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM (graceful), SIGKILL after ``timeout``; then any leftover process of its session.

    The session sweep only applies to processes started in their own session
    (``start_new_session``, as ``LocalRunner`` starts them); for others it finds
    nothing, since their pid is no session id.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for leftover in session_members(proc.pid):
        with contextlib.suppress(psutil.Error):
            leftover.kill()
    return proc.returncode


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
