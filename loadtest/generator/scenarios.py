"""The closed-loop scenarios: one locust user class each, and their options.

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
measured is the server, not a pacing choice.  Request names say the scenario,
the request and the server: ``io /sleep 0.5s @ lab-single``.

What it does not know: how records are kept, how the target was chosen.  Importing
it registers nothing; ``install`` adds the options.
"""

from __future__ import annotations

import itertools
import socket
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, User, constant, events, task

from loadtest.generator.picking import server_name
from loadtest.generator.process import option
from loadtest.registry.scenarios import SLOW_CLIENTS, SLOW_HEAD_START_S, SLOW_NORMAL_TIMEOUT_S

# The slow scenario: slow clients send at most TRICKLE_BYTES a second and reconnect RECONNECT_S after
# the server closes them; normal users start SLOW_HEAD_START_S later and give up on a request after
# SLOW_NORMAL_TIMEOUT_S (a failure counted as a timeout).
TRICKLE_BYTES = 2
RECONNECT_S = 5.0
SLOW_IO_TIMEOUT_S = 60.0


def add_options(parser) -> None:
    # parser.add_argument, not an argument group: only the parser itself
    # understands include_in_web_ui.
    parser.add_argument(
        "--sleep-s",
        type=float,
        default=0.5,
        env_var="LOCUST_SLEEP_S",
        help="seconds each /sleep request waits (IoUser, MixedUser)",
    )
    parser.add_argument(
        "--cpu-ms",
        type=float,
        default=20.0,
        env_var="LOCUST_CPU_MS",
        help="milliseconds of CPU each /cpu request burns (CpuUser, MixedUser)",
    )
    parser.add_argument(
        "--slow-clients",
        type=int,
        default=SLOW_CLIENTS,
        env_var="LOCUST_SLOW_CLIENTS",
        help="how many of the users are SlowClient (slow scenario): connections held, never a request",
    )
    parser.add_argument(
        "--hello-path",
        default="/",
        env_var="LOCUST_HELLO_PATH",
        help="path HelloUser requests (bring-your-own apps: any cheap GET)",
    )


class LabUser(FastHttpUser):
    """Shared by every scenario: no think time, one keep-alive connection per user."""

    abstract = True
    wait_time = constant(0)

    def request_name(self, scenario: str, what: str) -> str:
        """``io /sleep 0.5s @ lab-single``: locust's stats rows name the scenario and the server."""
        return f"{scenario} {what} @ {server_name(self.host or '')}"

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


def set_slow_clients(environment, **_kw) -> None:
    """``--slow-clients`` fixes how many of the users are slow clients (locust's ``fixed_count``)."""
    SlowClient.fixed_count = option(environment, "slow_clients", SLOW_CLIENTS)


def install() -> None:
    """The scenarios' options on the command line, and ``--slow-clients`` applied at ``init``."""
    events.init_command_line_parser.add_listener(add_options)
    events.init.add_listener(set_slow_clients)
