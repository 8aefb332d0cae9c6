"""Open-loop load for ``make tune``: requests *arrive* at a target rate, whatever the server does.

A closed loop (a user sends, waits for the answer, sends again) slows down
with the server it measures: a stalled server receives fewer requests, and the
requests that would have waited are never sent, so the latency they would have
had is never recorded (coordinated omission).  Here one ``ArrivalUser`` draws
arrival times from a Poisson process at the step's rate and sends each request
from its own greenlet, without waiting for earlier answers: up to
``MAX_OUTSTANDING`` requests in flight (FastHttpUser's connection pool grows to
the number in flight).  An arrival that finds ``MAX_OUTSTANDING`` requests
outstanding is counted as a failed request (``overflow``) instead of being
delayed.

The load is a ladder of steps (``--tune-ladder "20:4,40:4"``: rate req/s :
seconds), walked once; each request's name starts with its step (``s0 /path``),
so the runner slices the per-request records (``recorder.py``'s, installed here
with ``--identity-file``) by step without aligning clocks; a
record named ``s<step> __step__`` marks each step's start, for workloads whose
requests carry their own names (``--tune-user-file``: the team's own locust
user classes, see ``UserFile``).  After a
step the user stops the ladder early when the last ``GIVE_UP_STEPS`` steps each
missed a latency objective (``--tune-slo "95=200"``) by more than ``GIVE_UP``
times: higher rates only queue more.  The paths and their weights come from ``--tune-paths
"/a:3,/b:1"``, or the requests (methods, headers, bodies, weights, expected answers) from
``--tune-workload``: a ``registry.workload`` JSON file, or that JSON inline (``Replay``).

In locust's distributed mode (``--processes N``, or a master and workers from
elsewhere) every worker runs one ``ArrivalUser`` sending 1/N of each step's rate
from its own seed; a worker's user stops when its ladder ends, and the master
ends the run at ``--run-time`` (a worker quitting early would make the master
hand its user to another worker, which would walk the ladder again).

Policy choices: arrivals are Poisson (random gaps, as independent clients
make), seeded by ``--tune-seed``; the runner, not this file, judges each step.
What this module does not know: which server it loads or what a candidate is.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import random
import time
from collections.abc import Callable

import gevent
from gevent.event import Event
from locust import FastHttpUser, User, constant, events, task
from locust.exception import StopUser
from locust.runners import WorkerRunner

from loadtest.generator import process, recorder
from loadtest.registry import workload as workloads
from loadtest.registry.steps import STEP_MARKER as MARKER
from loadtest.registry.steps import step_name

log = logging.getLogger("wsgi-lab.tune")

MAX_OUTSTANDING = 800
GIVE_UP = 1.5  # a step whose percentile is this many times its objective missed badly
GIVE_UP_STEPS = 2  # this many badly missed steps in a row end the ladder
DRAIN_S = 10.0  # after the last step, wait this long at most for the answers still in flight
SEED_STRIDE = 1_000_003  # worker i draws its arrivals from seed + i x this: no two workers alike


def parse_ladder(text: str) -> list[tuple[float, float]]:
    """``"20:4,40:4"`` -> ``[(20.0, 4.0), (40.0, 4.0)]`` (rate req/s, seconds)."""
    steps = []
    for item in text.split(","):
        if item.strip():
            rate, _, seconds = item.partition(":")
            steps.append((float(rate), float(seconds)))
    return steps


def parse_weighted(text: str) -> list[tuple[str, float]]:
    """``"/a:3,/b=1"`` style pairs; the weight follows the LAST colon (paths may hold colons)."""
    out = []
    for item in text.split(","):
        if item.strip():
            path, _, weight = item.rpartition(":")
            out.append((path, float(weight)))
    return out


process.install()
recorder.install()


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    parser.add_argument("--tune-ladder", default="", include_in_web_ui=False, help="rate:seconds,...")
    parser.add_argument("--tune-paths", default="/:1", include_in_web_ui=False, help="path:weight,...")
    parser.add_argument("--tune-slo", default="", include_in_web_ui=False, help="percentile=ms,...")
    parser.add_argument("--tune-seed", type=int, default=0, include_in_web_ui=False, help="arrival seed")
    parser.add_argument("--tune-timeout", type=float, default=30.0, include_in_web_ui=False)
    parser.add_argument(
        "--tune-user-file", default="", include_in_web_ui=False, help="your locustfile's users"
    )
    parser.add_argument(
        "--tune-workload", default="", include_in_web_ui=False, help="a workload JSON file, or the JSON"
    )


def percentile(values: list[float], q: float) -> float:
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def missed_badly(latencies: list[float], slo: dict[float, float]) -> bool:
    """Whether a step's latencies (ms) missed some objective by more than GIVE_UP times."""
    return bool(latencies) and any(percentile(latencies, q) > GIVE_UP * ms for q, ms in slo.items())


class Paths:
    """The workload as weighted paths: each arrival is one GET on the ArrivalUser's own client."""

    def __init__(self, user: ArrivalUser, text: str) -> None:
        weighted = parse_weighted(text)
        self.user, self.paths, self.weights = user, [p for p, _ in weighted], [w for _, w in weighted]

    def arrival(self, step: int, rng: random.Random) -> tuple[str, Callable[[], None]]:
        path = rng.choices(self.paths, self.weights)[0]
        return path, lambda: self.user.client.get(path, name=step_name(step, path))


class Replay:
    """The workload as requests (``registry.workload``): each arrival sends one as recorded.

    Redirects are not followed (a recording logs the redirect and the request after it
    apart); an answer whose status is one the request expects (``Workload.expected``:
    a recorded 404, ``--expect-status``) is a success, any other answer from 400 up a failure.
    """

    def __init__(self, user: ArrivalUser, text: str) -> None:
        inline = text.lstrip().startswith("{")
        work = workloads.from_dict(json.loads(text)) if inline else workloads.read(text)
        self.user, self.requests = user, list(work.requests)
        self.weights = [r.weight for r in self.requests]
        self.expected = [work.expected(r) for r in self.requests]

    def send(self, step: int, i: int) -> None:
        r = self.requests[i]
        with self.user.client.request(
            r.method,
            r.target,
            name=f"s{step} {r.name}",
            data=r.body or None,
            headers=dict(r.headers) or None,
            catch_response=True,
            allow_redirects=False,
        ) as response:
            if response.status_code in self.expected[i]:
                response.success()

    def arrival(self, step: int, rng: random.Random) -> tuple[str, Callable[[], None]]:
        i = rng.choices(range(len(self.requests)), self.weights)[0]
        return self.requests[i].name, lambda: self.send(step, i)


class UserFile:
    """The workload as the team's own locust user classes: each arrival runs one task of one user.

    A task needs a user instance and runs one at a time on it, so instances are
    kept in a pool per class and a new one (``on_start`` included) is made when
    every existing one is busy: arrivals never wait for a free user.  Classes are
    picked by their ``weight``, tasks by their ``@task`` weights; their
    ``wait_time`` is not used (the arrival process is the pacing), and their
    ``host`` is replaced by the run's host, so traffic only goes to the server
    under test.  TaskSets are not supported.
    """

    def __init__(self, environment, path: str) -> None:
        spec = importlib.util.spec_from_file_location("tune_user_locustfile", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.classes = [
            c for c in vars(module).values()
            if isinstance(c, type) and issubclass(c, User) and c is not ArrivalUser and not c.abstract
        ]  # fmt: skip
        if not self.classes:
            raise ValueError(f"no locust User classes in {path}")
        self.environment = environment
        self.idle: dict[type, list] = {c: [] for c in self.classes}
        for c in self.classes:
            c.host = environment.host

    def run_one(self, cls: type, task: Callable) -> None:
        user = self.idle[cls].pop() if self.idle[cls] else self.fresh(cls)
        try:
            task(user)
        except Exception as exc:  # a task's own failure; its requests already reported theirs
            log.debug("task %s failed: %r", getattr(task, "__name__", task), exc)
        finally:
            self.idle[cls].append(user)

    def fresh(self, cls: type):
        user = cls(self.environment)
        user.on_start()
        return user

    def arrival(self, _step: int, rng: random.Random) -> tuple[str, Callable[[], None]]:
        cls = rng.choices(self.classes, [getattr(c, "weight", 1) or 1 for c in self.classes])[0]
        task = rng.choice(cls.tasks)
        return cls.__name__, lambda: self.run_one(cls, task)


class InFlight:
    """The requests outstanding, each in a raw greenlet, at most ``limit`` at once.

    ``gevent.spawn_raw`` makes no ``Greenlet`` object and a counter replaces a
    pool's semaphore and set: about a quarter less CPU per arrival than
    ``gevent.pool.Pool`` (``make generator-ceiling``).  A raw greenlet cannot be
    killed: the ones still running after the drain end with the process.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.count, self.idle = limit, 0, Event()
        self.idle.set()

    def full(self) -> bool:
        return self.count >= self.limit

    def spawn(self, fn: Callable, *args) -> None:
        self.count += 1
        self.idle.clear()
        gevent.spawn_raw(self.run, fn, args)

    def run(self, fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        finally:
            self.count -= 1
            if not self.count:
                self.idle.set()

    def join(self, timeout: float) -> bool:
        """Wait until none is outstanding, ``timeout`` seconds at most; whether none is."""
        return self.idle.wait(timeout)


class ArrivalUser(FastHttpUser):
    """Run exactly once (one user): walks the ladder, then stops the test."""

    wait_time = constant(0)
    concurrency = MAX_OUTSTANDING
    network_timeout = 30.0
    connection_timeout = 30.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.ladder = parse_ladder(options.tune_ladder)
        if options.tune_user_file:
            self.work: Paths | Replay | UserFile = UserFile(self.environment, options.tune_user_file)
        elif options.tune_workload:
            self.work = Replay(self, options.tune_workload)
        else:
            self.work = Paths(self, options.tune_paths)
        self.slo = {float(q): float(ms) for q, ms in parse_weighted(options.tune_slo.replace("=", ":"))}
        runner = self.environment.runner
        index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        self.share = 1.0 / max(int(getattr(options, "num_users", 1) or 1), 1)  # of each step's rate
        self.rng = random.Random(options.tune_seed + SEED_STRIDE * index)
        self.pool = InFlight(MAX_OUTSTANDING)
        if not options.tune_user_file:
            # each arrival is another client: none carries the cookies an earlier answer set
            # (and the jar's two passes per request are a tenth of this process's CPU)
            self.client.client.cookiejar = None
        self.step_ms: dict[int, list[float]] = {}

    def send(self, step: int, request: Callable[[], None]) -> None:
        started = time.perf_counter()
        request()
        self.step_ms.setdefault(step, []).append((time.perf_counter() - started) * 1000.0)

    def mark(self, step: int, what: str, exception: Exception | None = None) -> None:
        """A record that is no request: a step's start (``MARKER``), or an arrival with no room (failed)."""
        self.environment.events.request.fire(
            request_type="GET",
            name=step_name(step, what),
            response_time=0.0,
            response_length=0,
            response=None,
            context={},
            exception=exception,
            start_time=time.time(),
            url=what,
        )

    def walk(self, step: int, rate: float, seconds: float) -> None:
        begin = time.monotonic()
        due = begin
        self.mark(step, MARKER)
        while True:
            due += self.rng.expovariate(rate)
            if due - begin >= seconds:
                break
            gevent.sleep(max(due - time.monotonic(), 0.0))
            what, request = self.work.arrival(step, self.rng)
            if self.pool.full():
                self.mark(step, what, RuntimeError(f"overflow: {MAX_OUTSTANDING} requests outstanding"))
            else:
                self.pool.spawn(self.send, step, request)
        gevent.sleep(max(begin + seconds - time.monotonic(), 0.0))

    @task
    def ladder_once(self) -> None:
        missed = 0
        for step, (rate, seconds) in enumerate(self.ladder):
            self.walk(step, rate * self.share, seconds)
            # the first step is the runner's warm-up (a just-started server): never a reason to stop
            missed = missed + 1 if step > 0 and missed_badly(self.step_ms.get(step, []), self.slo) else 0
            if missed >= GIVE_UP_STEPS:
                break
        self.pool.join(timeout=DRAIN_S)
        runner = self.environment.runner
        if runner is not None and not isinstance(runner, WorkerRunner):
            gevent.spawn_later(0.1, runner.quit)
        raise StopUser()


@events.init.add_listener
def set_timeouts(environment, **_kw) -> None:
    """``--tune-timeout``: a request unanswered after this many seconds fails as a timeout."""
    options = environment.parsed_options
    if options is not None:
        ArrivalUser.network_timeout = ArrivalUser.connection_timeout = options.tune_timeout
