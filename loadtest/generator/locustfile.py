"""Locust scenarios for wsgi-lab, and the recorder of who served each request.

User classes for each scenario (pick them on the command line --
``locust -f loadtest/generator/locustfile.py IoUser`` -- or in the web UI's class
picker, which this file turns on by default):

* ``HelloUser``  ``GET /`` (or ``--hello-path``): per-request overhead of the server.
* ``IoUser``     ``GET /sleep?s=<--sleep-s>``: I/O-bound work; shows how many
  requests a model can keep in flight.
* ``CpuUser``    ``GET /cpu?ms=<--cpu-ms>``: CPU-bound work holding the GIL;
  shows threads sharing one interpreter vs processes using every core.
* ``MixedUser``  all three, weighted 3:1:1.
* ``SlowClient`` + ``SlowNormalUser`` (the slow scenario): ``--slow-clients``
  raw sockets trickle request heads or hold idle keep-alive connections while
  the normal users send ``GET /``; shows which models a slow client starves.

Users never pause between requests (closed loop, no think time), so what is
measured is the server, not a pacing choice.

Every response carries identity headers set inside the app (model, pid,
thread, start/end, the request's CPU time, its lane kind and id).  The
``events.request`` hook records them; in distributed mode each worker forwards
its records to the master in batches through
locust's message API.  The master (or the local runner) keeps them and, when
``--identity-file`` is set, writes them as JSON lines when the test stops --
that file is what ``python -m loadtest.compare`` turns into timelines and
in-flight counts.

Target picking: ``LAB_HOSTS="name=url,name=url"`` (the compose file sets it)
names the servers.  In the web UI they are the first choice of the start form
(``loadtest/generator/webui.py``: the picker, the wsgi-lab evidence tab, the reachability
check); on the command line ``--target NAME`` picks one.  Either way the chosen
server's URL becomes ``environment.host`` before the test starts, so locust's
header, the workers and every request use it.  ``none`` keeps the Host field.

When ``LAB_BIND_ADDR`` says the UI is published beyond loopback, this file turns
on locust's ``--web-login`` and ``loadtest/generator/access.py`` supplies the login and the
allowlist of hosts a run may load.

Request names say the scenario, the request and the server: ``io /sleep 0.5s
@ lab-single``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import sys
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import gevent
import locust.stats
from locust import FastHttpUser, User, constant, events, task
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from loadtest.generator import access, webui
from loadtest.inserver.headers import (
    HEADER_CPU,
    HEADER_END,
    HEADER_LANE_ID,
    HEADER_LANE_KIND,
    HEADER_MODEL,
    HEADER_PID,
    HEADER_START,
    HEADER_THREAD,
)
from loadtest.measure import evidence
from loadtest.registry.catalog import (
    SCENARIO_CLASSES,
    SLOW_CLIENTS,
    SLOW_HEAD_START_S,
    SLOW_NORMAL_TIMEOUT_S,
    error_kind,
    parse_hosts,
)

log = logging.getLogger("wsgi-lab")

MESSAGE_TYPE = "wsgi_lab_identity"
FLUSH_INTERVAL_S = 1.0
# The master keeps at most this many records per test (about 100 bytes each);
# beyond that the web UI could run for hours and eat memory for a timeline
# nobody can read anyway.  Dropped records are counted and logged.
MAX_RECORDS = int(os.environ.get("LAB_IDENTITY_MAX_RECORDS", "500000"))
# The slow scenario: slow clients send at most TRICKLE_BYTES a second and reconnect RECONNECT_S after
# the server closes them; normal users start SLOW_HEAD_START_S later and give up on a request after
# SLOW_NORMAL_TIMEOUT_S (a failure counted as a timeout).
TRICKLE_BYTES = 2
RECONNECT_S = 5.0
SLOW_IO_TIMEOUT_S = 60.0

# Flush --csv files every 2 s instead of every 10 s, so the compare runner can
# print live requests/s (a documented knob of locust's CSV writer).
locust.stats.CSV_STATS_FLUSH_INTERVAL_SEC = 2


def lab_hosts() -> dict[str, str]:
    try:
        return parse_hosts(os.environ.get("LAB_HOSTS", ""))
    except ValueError as exc:
        log.error("LAB_HOSTS ignored: %s", exc)
        return {}


@cache
def lab_access() -> access.Access:
    """The web UI's guards, read once per process (a generated password must stay the same)."""
    try:
        return access.from_env(lab_hosts())
    except ValueError as exc:
        print(f"locust: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


# --------------------------------------------------------------------------- options


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    # parser.add_argument, not an argument group: only the parser itself
    # understands include_in_web_ui.
    group = parser
    group.add_argument(
        "--sleep-s",
        type=float,
        default=0.5,
        env_var="LOCUST_SLEEP_S",
        help="seconds each /sleep request waits (IoUser, MixedUser)",
    )
    group.add_argument(
        "--cpu-ms",
        type=float,
        default=20.0,
        env_var="LOCUST_CPU_MS",
        help="milliseconds of CPU each /cpu request burns (CpuUser, MixedUser)",
    )
    group.add_argument(
        "--slow-clients",
        type=int,
        default=SLOW_CLIENTS,
        env_var="LOCUST_SLOW_CLIENTS",
        help="how many of the users are SlowClient (slow scenario): connections held, never a request",
    )
    group.add_argument(
        "--hello-path",
        default="/",
        env_var="LOCUST_HELLO_PATH",
        help="path HelloUser requests (bring-your-own apps: any cheap GET)",
    )
    hosts = lab_hosts()
    group.add_argument(
        "--target",
        default=webui.NO_TARGET,
        choices=[webui.NO_TARGET, *hosts],
        env_var="LOCUST_TARGET",
        # The web UI's own picker (loadtest/generator/webui.py) sends this field.
        include_in_web_ui=False,
        help="server to load, from LAB_HOSTS (overrides Host); 'none' keeps the Host field",
    )
    group.add_argument(
        "--identity-file",
        default="",
        env_var="LOCUST_IDENTITY_FILE",
        include_in_web_ui=False,
        help="write every response's identity headers here as JSON lines when the test stops",
    )
    # Running all four scenarios at once is rarely what anyone wants from the
    # UI: show the class picker unless told otherwise.
    parser.set_defaults(class_picker=True)
    # A UI published beyond loopback asks for a password (locust's own login page).
    if lab_access().login:
        parser.set_defaults(web_login=True)


def option(environment, name: str, default):
    options = environment.parsed_options
    return getattr(options, name, default) if options is not None else default


# --------------------------------------------------------------------------- scenarios


class LabUser(FastHttpUser):
    """Shared by every scenario: no think time, one keep-alive connection per user."""

    abstract = True
    wait_time = constant(0)

    def request_name(self, scenario: str, what: str) -> str:
        """``io /sleep 0.5s @ lab-single``: locust's stats rows name the scenario and the server."""
        return f"{scenario} {what} @ {webui.server_name(self.host or '', lab_hosts())}"

    def get_hello(self) -> None:
        path = option(self.environment, "hello_path", "/")
        self.client.get(path, name=self.request_name("hello", path))

    def get_sleep(self) -> None:
        seconds = option(self.environment, "sleep_s", 0.5)
        self.client.get(f"/sleep?s={seconds:g}", name=self.request_name("io", f"/sleep {seconds:g}s"))

    def get_cpu(self) -> None:
        ms = option(self.environment, "cpu_ms", 20.0)
        self.client.get(f"/cpu?ms={ms:g}", name=self.request_name("cpu", f"/cpu {ms:g}ms"))


class HelloUser(LabUser):
    """hello: the cheapest request, so the server's own overhead dominates."""

    @task
    def hello(self) -> None:
        self.get_hello()


class IoUser(LabUser):
    """io: the worker waits without using CPU, like a database call."""

    @task
    def io(self) -> None:
        self.get_sleep()


class CpuUser(LabUser):
    """cpu: pure-Python work holding the GIL; threads cannot run it in parallel."""

    @task
    def cpu(self) -> None:
        self.get_cpu()


class MixedUser(LabUser):
    """mixed: mostly cheap requests with some slow I/O and some CPU work."""

    @task(3)
    def hello(self) -> None:
        self.get_hello()

    @task(1)
    def io(self) -> None:
        self.get_sleep()

    @task(1)
    def cpu(self) -> None:
        self.get_cpu()


class SlowClient(User):
    """slow: a slow or idle client (slowloris) -- a raw socket that holds a connection, not a request.

    Every other one trickles a request head, ``TRICKLE_BYTES`` bytes a second,
    and never finishes it; the rest send one request, read the answer and keep
    the connection open without a word.  When the server closes it (a 408, the
    keep-alive timeout) they reconnect after ``RECONNECT_S`` seconds, so none
    sends more than a few bytes a second.  ``--slow-clients`` of them run
    (``fixed_count``), stopped with the test like every user; they record
    nothing: they are the load's shape, ``SlowNormalUser`` is its measure.
    """

    fixed_count = SLOW_CLIENTS
    wait_time = constant(0)
    serial = itertools.count()

    def on_start(self) -> None:
        self.trickles = next(SlowClient.serial) % 2 == 0
        self.sock: socket.socket | None = None

    def on_stop(self) -> None:
        if self.sock is not None:
            self.sock.close()

    @task
    def hold(self) -> None:
        url = urlsplit(self.host or "")
        try:
            self.sock = socket.create_connection((url.hostname, url.port or 80), timeout=SLOW_IO_TIMEOUT_S)
            if self.trickles:
                self.trickle_head(self.sock)
            else:
                self.idle_keep_alive(self.sock)
        except OSError:
            pass
        finally:
            if self.sock is not None:
                self.sock.close()
                self.sock = None
        gevent.sleep(RECONNECT_S)

    @staticmethod
    def trickle_head(sock: socket.socket) -> None:
        """A head that never ends: a few bytes a second until the server answers or closes."""
        head = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: "
        sock.settimeout(1.0)
        for i in itertools.count():
            piece = head[i * TRICKLE_BYTES : (i + 1) * TRICKLE_BYTES] or b"s" * TRICKLE_BYTES
            sock.sendall(piece)
            try:
                sock.recv(4096)
            except TimeoutError:
                continue
            return  # an answer (408) or the server closed the connection

    @staticmethod
    def idle_keep_alive(sock: socket.socket) -> None:
        """One request, then silence on the open connection until the server closes it."""
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: slow\r\n\r\n")
        while sock.recv(4096):  # the response, then b"" when the server closes (SLOW_IO_TIMEOUT_S apart)
            pass


class SlowNormalUser(LabUser):
    """slow: the normal users among the slow clients -- ``GET /`` with a client timeout.

    They start ``SLOW_HEAD_START_S`` after the slow clients, so they meet a
    server whose connections are already held; a request that gets no answer
    within ``network_timeout`` fails as a timeout instead of waiting forever.
    """

    network_timeout = SLOW_NORMAL_TIMEOUT_S
    connection_timeout = SLOW_NORMAL_TIMEOUT_S

    def on_start(self) -> None:
        gevent.sleep(SLOW_HEAD_START_S)

    @task
    def hello(self) -> None:
        self.client.get("/", name=self.request_name("slow", "/"))


@events.init.add_listener
def set_slow_clients(environment, **_kwargs) -> None:
    """``--slow-clients`` fixes how many of the users are slow clients (locust's ``fixed_count``)."""
    SlowClient.fixed_count = option(environment, "slow_clients", SLOW_CLIENTS)


# Scenario names used by `python -m loadtest.compare --scenario` (kept in catalog.py).
assert all(name in globals() for names in SCENARIO_CLASSES.values() for name in names.split())


# --------------------------------------------------------------------------- identity recording


class Recorder:
    """Collects identity records where requests happen and gathers them where stats live.

    Workers buffer and forward; the master (or the local runner, which
    "sends" to itself) stores.  One code path for both, so local and
    distributed runs record the same thing.
    """

    def __init__(self) -> None:
        self.pending: list[list] = []
        self.records: list[list] = []
        self.dropped = 0
        self.flusher: gevent.Greenlet | None = None
        self.environment = None

    # --- where requests happen (local runner or worker)
    def on_request(self, name, start_time, response_time, response, exception, **_kw) -> None:
        headers = getattr(response, "headers", None) or {}
        ok = exception is None
        status = getattr(response, "status_code", None) or None
        self.pending.append(
            [
                round(start_time, 6),
                round(response_time, 3),
                ok,
                name,
                headers.get(HEADER_MODEL),
                headers.get(HEADER_PID),
                headers.get(HEADER_THREAD),
                headers.get(HEADER_START),
                headers.get(HEADER_END),
                status,
                error_kind(status, exception),
                # the user (greenlet) that sent it: which requests belong to one closed loop
                f"{os.getpid()}.{id(gevent.getcurrent()):x}",
                headers.get(HEADER_CPU),
                headers.get(HEADER_LANE_KIND),
                headers.get(HEADER_LANE_ID),
            ]
        )

    def flush(self) -> None:
        runner = self.environment.runner if self.environment else None
        if not self.pending or runner is None:
            return
        batch, self.pending = self.pending, []
        runner.send_message(MESSAGE_TYPE, batch)

    def flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self.flush()

    # --- where stats live (master or local runner)
    def on_batch(self, environment, msg, **_kw) -> None:
        room = MAX_RECORDS - len(self.records)
        batch = msg.data or []
        self.records.extend(batch[: max(room, 0)])
        self.dropped += max(len(batch) - max(room, 0), 0)

    def as_dicts(self) -> list[dict]:
        keys = (
            *("t", "ms", "ok", "name", "model", "pid", "thread", "start", "end", "status", "error", "user"),
            *("cpu_ms", "lane_kind", "lane_id"),
        )
        return [dict(zip(keys, r, strict=True)) for r in self.records]

    def write(self, path: str) -> None:
        """Replace ``path`` atomically, so a reader never sees half a file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in self.as_dicts():
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        tmp.replace(target)

    def summary_line(self) -> str:
        facts = evidence.facts(self.as_dicts())
        line = (
            f"identity: {facts['requests']} responses, {facts['pids']} pid(s), "
            f"{facts['threads']} thread lane(s), at most {facts['max_in_flight']} in flight"
        )
        if self.dropped:
            line += f" ({self.dropped} records dropped over the {MAX_RECORDS} cap)"
        return line


recorder = Recorder()


def gathers(environment) -> bool:
    return isinstance(environment.runner, MasterRunner | LocalRunner)


def sends(environment) -> bool:
    return isinstance(environment.runner, WorkerRunner | LocalRunner)


def pick_target(environment) -> None:
    """``--target NAME`` (command line or LOCUST_TARGET): its URL is the run's host from the start."""
    target = option(environment, "target", webui.NO_TARGET)
    if not target or target == webui.NO_TARGET:
        return
    hosts = lab_hosts()
    if target not in hosts:
        log.error("--target %s is not in LAB_HOSTS (%s)", target, ", ".join(hosts) or "empty")
        return
    environment.host = hosts[target]
    log.info("target %s -> %s", target, environment.host)


@events.init.add_listener
def fresh_loop_clock(**_kw) -> None:
    """Refresh gevent's cached clock before locust sets its ``--run-time`` timer.

    gevent timers count from the time the loop cached at its last iteration.
    Importing this file and locust's setup run before the loop turns again, and
    on a busy machine they take seconds: ``spawn_later(run_time)`` then fires that
    many seconds early (measured: 0.8 s of a 4 s run under load average 20).
    ``init`` fires just before locust sets the timer.
    """
    gevent.get_hub().loop.update_now()


@events.init.add_listener
def on_init(environment, **_kw) -> None:
    recorder.environment = environment
    if gathers(environment):
        pick_target(environment)
    if environment.web_ui is not None:
        access.install(environment, lab_access())
        webui.install(environment, lab_hosts(), recorder, lab_access())
    if environment.runner is not None and sends(environment):
        webui.report_unreachable(environment, lab_hosts())
    if environment.runner is not None and gathers(environment):
        environment.runner.register_message(MESSAGE_TYPE, recorder.on_batch)
    if environment.runner is not None and sends(environment):
        environment.events.request.add_listener(recorder.on_request)


@events.test_start.add_listener
def on_test_start(environment, **_kw) -> None:
    if gathers(environment):
        # The host was settled before the start (pick_target, or the web UI's
        # /swarm hook); the master sends it to the workers in each spawn message.
        recorder.records, recorder.dropped = [], 0
    if sends(environment):
        recorder.pending = []
        if recorder.flusher is None or recorder.flusher.dead:
            recorder.flusher = gevent.spawn(recorder.flush_forever)


def finish(environment) -> None:
    if sends(environment):
        recorder.flush()
    if gathers(environment):
        path = option(environment, "identity_file", "")
        if path:
            recorder.write(path)
        log.info(recorder.summary_line())


@events.test_stop.add_listener
def on_test_stop(environment, **_kw) -> None:
    finish(environment)
    if sends(environment) and recorder.flusher is not None:
        recorder.flusher.kill(block=False)
        recorder.flusher = None


@events.quit.add_listener
def on_quit(**_kw) -> None:
    """Headless distributed runs: the last worker batches arrive after test_stop."""
    environment = recorder.environment
    if environment is not None and environment.runner is not None and gathers(environment):
        path = option(environment, "identity_file", "")
        if path:
            recorder.write(path)
