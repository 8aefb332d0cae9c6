"""Two behaviours a load run does not show: SIGTERM with requests in flight, and keep-alive.

    python -m loadtest.lifecycle --targets granian,uwsgi,gunicorn-sync

For each registry target, started locally as ``compare`` starts it:

- **SIGTERM**: ``--in-flight`` requests to ``/sleep`` (default: the target's capacity
  + 2, so some wait outside the app), each on its own connection; ``--settle`` seconds
  later SIGTERM to the server's root process, and shortly after that one new
  connection. Counted: how many of the in-flight requests came back 200, what the
  others got (reset, disconnected, refused), what the new connection got, the exit
  status and how long the server took to exit.
- **keep-alive**: three ``GET /whoami`` on one ``http.client`` connection (HTTP/1.1):
  how many TCP connections carried them (the client's local port before each
  request: ``http.client`` reconnects by itself when the server closed the last one)
  and how many worker pids answered.

Bounded: one server at a time, at most ``--in-flight`` requests of ``--sleep`` seconds,
every process stopped by pid. A target that fails to start is reported (FAILED, with
the tail of its stderr) and the others still run; the exit status is then 1. The load
average is printed with each line, since a busy machine stretches every time here.
What it does not know: why a server behaves so -- docs/measurements/2026-12-01-granian-uwsgi.md
says that, with these lines as their evidence.
"""

from __future__ import annotations

import argparse
import http.client
import select
import shlex
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from loadtest.inserver.headers import HEADER_PID
from loadtest.registry import targets
from loadtest.registry.paths import PROJECT_ROOT
from loadtest.run.environment import load_average
from loadtest.run.local import LocalRunner
from loadtest.run.runner import START_TIMEOUT_S, Launch, TargetRunner
from server.oneline import OneLineParser

LATE_AFTER_S = 0.3  # the new connection, this long after SIGTERM
EXIT_WAIT_S = 30.0  # how long a server gets to exit before it is killed (and reported so)
MAX_IN_FLIGHT = 64


@dataclass(frozen=True)
class Outcome:
    """One request's end: an HTTP status, or the name of the error the client saw."""

    result: str  # "200", "503", "ConnectionResetError", ...
    seconds: float
    pid: str | None = None


def get(port: int, path: str, timeout: float) -> Outcome:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return Outcome(str(r.status), time.monotonic() - started, r.getheader(HEADER_PID))
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(type(exc).__name__, time.monotonic() - started)
    finally:
        conn.close()


def in_flight(port: int, n: int, sleep_s: float) -> tuple[list[threading.Thread], list[Outcome | None]]:
    """``n`` threads, each sending one ``/sleep`` on its own connection; their outcomes fill the list."""
    outcomes: list[Outcome | None] = [None] * n

    def one(i: int) -> None:
        outcomes[i] = get(port, f"/sleep?s={sleep_s}", timeout=sleep_s + EXIT_WAIT_S)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads, outcomes


def started_server(target: targets.Target, log_dir: Path, what: str) -> TargetRunner:
    """``target`` started and answering HTTP, logs in ``<name>.<what>.*``; else its ``problem`` says why."""
    launch = Launch(
        name=target.name, target=target, log_dir=log_dir, cwd=PROJECT_ROOT, stem=f"{target.name}.{what}"
    )
    server = LocalRunner(launch)
    if server.start() and server.wait_ready(START_TIMEOUT_S):
        return server
    server.problem = f"{server.problem}; {server.stderr_tail(3)}"
    return server


def sigterm(target: targets.Target, n: int, sleep_s: float, settle_s: float, log_dir: Path) -> dict:
    """SIGTERM with ``n`` requests sent: what came back, what a new connection got, how it exited."""
    server = started_server(target, log_dir, "sigterm")
    if server.problem:
        return {"target": target.name, "error": server.problem}
    with server:
        threads, outcomes = in_flight(server.port, n, sleep_s)
        time.sleep(settle_s)
        signalled = time.monotonic()
        server.terminate()
        time.sleep(LATE_AFTER_S)
        late = get(server.port, "/health", timeout=EXIT_WAIT_S)
        for t in threads:
            t.join(sleep_s + EXIT_WAIT_S)
        status = server.wait_exit(EXIT_WAIT_S)  # still running: reported, then killed on the way out
        exit_code: int | str = status if status is not None else f"still running after {EXIT_WAIT_S:g} s"
        exit_s = time.monotonic() - signalled
    done = [o for o in outcomes if o is not None]
    return {
        "target": target.name,
        "in_flight": n,
        "completed": sum(1 for o in done if o.result == "200"),
        "lost": dict(Counter(o.result for o in done if o.result != "200")),
        "pids": len({o.pid for o in done if o.pid}),
        "late": late.result,
        "exit": exit_code,
        "exit_s": exit_s,
    }


def closed_by_peer(sock: socket.socket, wait_s: float = 0.2) -> bool:
    """True if the server has closed this connection (readable, and a peek reads end-of-file)."""
    readable, _, _ = select.select([sock], [], [], wait_s)
    return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""


def keep_alive(target: targets.Target, log_dir: Path, requests: int = 3) -> dict:
    """``requests`` GETs on one client connection: TCP connections used, pids, closes said and silent.

    After each response the socket is checked: a server that closes it without a
    ``Connection: close`` leaves an HTTP/1.1 client to find out on its next request
    (``http.client`` then fails with RemoteDisconnected; urllib3, under locust, checks
    first and reconnects), so the connection is closed here and the next request
    opens a new one.
    """
    server = started_server(target, log_dir, "keep-alive")
    if server.problem:
        return {"target": target.name, "error": server.problem}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    local_ports, pids, said_close, silent_close = [], [], 0, 0
    try:
        for _ in range(requests):
            conn.request("GET", "/whoami")
            local_ports.append(conn.sock.getsockname()[1])
            r = conn.getresponse()
            r.read()
            pids.append(r.getheader(HEADER_PID))
            if r.will_close:
                said_close += 1
            elif closed_by_peer(conn.sock):
                silent_close += 1
                conn.close()
    finally:
        conn.close()
        server.stop()
    return {
        "target": target.name,
        "requests": requests,
        "connections": len(set(local_ports)),
        "pids": len(set(pids)),
        "said_close": said_close,
        "silent_close": silent_close,
    }


def sigterm_line(row: dict) -> str:
    if row.get("error"):
        return f"{row['target']}: SIGTERM not tried: FAILED -- {row['error']}"
    lost = ", ".join(f"{n} {kind}" for kind, n in row["lost"].items()) or "none"
    return (
        f"{row['target']}: SIGTERM with {row['in_flight']} in flight -> {row['completed']} completed "
        f"(on {row['pids']} pids), lost: {lost}; new connection: {row['late']}; "
        f"exit {row['exit']} after {row['exit_s']:.1f} s"
    )


def keep_alive_line(row: dict) -> str:
    if row.get("error"):
        return f"{row['target']}: keep-alive not tried: FAILED -- {row['error']}"
    return (
        f"{row['target']}: {row['requests']} requests on one client connection -> "
        f"{row['connections']} TCP connection(s), {row['pids']} pid(s); "
        f"closed with Connection: close {row['said_close']}x, silently {row['silent_close']}x"
    )


def load_text() -> str:
    load = load_average()
    return "load average unknown" if load is None else f"load average {load:.1f}"


def parse(argv: list[str]) -> argparse.Namespace:
    p = OneLineParser(prog="python -m loadtest.lifecycle", description=__doc__.split("\n")[0])
    # Not argparse's required=True: that check comes before the one for unknown flags, hiding a typo.
    p.add_argument("--targets", help="comma-separated registry targets (required)")
    p.add_argument(
        "--options",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="run NAME with ARGS instead of the registry's options (repeatable), "
        "e.g. 'uwsgi=--master --processes 4 --die-on-term'",
    )
    p.add_argument("--in-flight", type=int, help="requests in flight at SIGTERM (default: capacity + 2)")
    p.add_argument(
        "--sleep", type=float, default=2.0, help="seconds each in-flight request sleeps (default 2)"
    )
    p.add_argument(
        "--settle", type=float, default=0.5, help="seconds between sending and SIGTERM (default 0.5)"
    )
    args = p.parse_args(argv)
    if not args.targets:
        p.error("--targets is required: comma-separated registry targets")
    unknown = [n for n in args.targets.split(",") if n not in targets.TARGETS]
    if unknown:
        p.error(f"unknown target(s) {', '.join(unknown)}; choose from: {', '.join(targets.TARGETS)}")
    args.replaced = {}
    for item in args.options:
        name, eq, words = item.partition("=")
        if not eq or name not in targets.TARGETS:
            p.error(f"--options {item!r}: give NAME=ARGS with NAME a registry target")
        args.replaced[name] = tuple(shlex.split(words))
    if args.in_flight is not None and not 1 <= args.in_flight <= MAX_IN_FLIGHT:
        p.error(f"--in-flight must be 1..{MAX_IN_FLIGHT}")
    if not 0 < args.sleep <= 10 or not 0 <= args.settle < args.sleep:
        p.error("--sleep must be in (0, 10] and --settle in [0, --sleep)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    log_dir = Path(tempfile.mkdtemp(prefix="wsgilab-lifecycle-"))
    failed = False
    for name in args.targets.split(","):
        target = targets.TARGETS[name]
        if name in args.replaced:
            target = replace(target, options=args.replaced[name])
        n = args.in_flight or min(MAX_IN_FLIGHT, (target.capacity(MAX_IN_FLIGHT) or 4) + 2)
        row = sigterm(target, n, args.sleep, args.settle, log_dir)
        print(f"{sigterm_line(row)}  [{load_text()}]", flush=True)
        alive = keep_alive(target, log_dir)
        print(f"{keep_alive_line(alive)}  [{load_text()}]", flush=True)
        failed = failed or bool(row.get("error") or alive.get("error"))
    print(f"server logs: {log_dir}")
    return 1 if failed else 0
