"""The recorder of who served each request: identity headers in, JSON lines out.

Every response carries identity headers set inside the app (model, pid, thread,
start/end, the request's CPU time, its lane kind and id).  ``install`` hooks a
``Recorder`` into locust's events: where requests happen (the local runner or a
worker) it keeps one record per request and forwards them in batches through
locust's message API; where stats live (the master, or the local runner, which
"sends" to itself) it stores them and, when ``--identity-file`` is set, writes
them as JSON lines when the test stops.  One code path for both, so local and
distributed runs record the same thing.  That file is what
``python -m loadtest.compare`` turns into timelines and in-flight counts, and
what ``make tune`` slices by step.

What it does not know: the scenarios, the target, the web UI (which reads
``records`` and ``as_dicts()``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import gevent
from gevent import getcurrent
from locust import events

from loadtest.generator.process import gathers, option, sends
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
from loadtest.registry.error_kinds import error_kind

log = logging.getLogger("wsgi-lab")

MESSAGE_TYPE = "wsgi_lab_identity"
FLUSH_INTERVAL_S = 1.0
# The master keeps at most this many records per test (about 100 bytes each);
# beyond that the web UI could run for hours and eat memory for a timeline
# nobody can read anyway.  Dropped records are counted and logged.
MAX_RECORDS = int(os.environ.get("LAB_IDENTITY_MAX_RECORDS", "500000"))
NO_HEADERS: dict[str, str] = {}
KEYS = (
    *("t", "ms", "ok", "name", "model", "pid", "thread", "start", "end", "status", "error", "user"),
    *("cpu_ms", "lane_kind", "lane_id"),
)


class Recorder:
    """Collects identity records where requests happen and gathers them where stats live."""

    def __init__(self) -> None:
        self.pending: list[list] = []
        self.records: list[list] = []
        self.dropped = 0
        self.flusher: gevent.Greenlet | None = None
        self.environment = None
        self.sender = f"{os.getpid()}."  # set again at init: locust --processes forks after the import
        self.written: int | None = None  # how many records the last write held

    # --- where requests happen (local runner or worker)
    def on_request(self, name, start_time, response_time, response, exception, **_kw) -> None:
        """One record per request, as little work as it takes: this runs in the generator's hot path."""
        headers = getattr(response, "headers", None) or NO_HEADERS
        get = headers.get
        status = getattr(response, "status_code", None) or None
        answered = exception is None and status is not None and 200 <= status < 300
        self.pending.append(
            [
                round(start_time, 6),
                round(response_time, 3),
                exception is None,
                name,
                get(HEADER_MODEL),
                get(HEADER_PID),
                get(HEADER_THREAD),
                get(HEADER_START),
                get(HEADER_END),
                status,
                "" if answered else error_kind(status, exception),
                # the user (greenlet) that sent it: which requests belong to one closed loop
                f"{self.sender}{id(getcurrent()):x}",
                get(HEADER_CPU),
                get(HEADER_LANE_KIND),
                get(HEADER_LANE_ID),
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
        return [dict(zip(KEYS, r, strict=True)) for r in self.records]

    def write(self, path: str) -> None:
        """Replace ``path`` atomically, so a reader never sees half a file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in self.as_dicts():
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        tmp.replace(target)
        self.written = len(self.records)

    def summary_line(self) -> str:
        facts = evidence.facts(self.as_dicts())
        line = (
            f"identity: {facts['requests']} responses, {facts['pids']} pid(s), "
            f"{facts['threads']} thread lane(s), at most {facts['max_in_flight']} in flight"
        )
        if self.dropped:
            line += f" ({self.dropped} records dropped over the {MAX_RECORDS} cap)"
        return line

    # --- locust's events (install() adds them)
    def on_init(self, environment, **_kw) -> None:
        self.environment = environment
        self.sender = f"{os.getpid()}."
        if environment.runner is not None and gathers(environment):
            environment.runner.register_message(MESSAGE_TYPE, self.on_batch)
        if environment.runner is not None and sends(environment):
            environment.events.request.add_listener(self.on_request)

    def on_test_start(self, environment, **_kw) -> None:
        if gathers(environment):
            self.records, self.dropped, self.written = [], 0, None
        if sends(environment):
            self.pending = []
            if self.flusher is None or self.flusher.dead:
                self.flusher = gevent.spawn(self.flush_forever)

    def on_test_stop(self, environment, **_kw) -> None:
        if sends(environment):
            self.flush()
        if gathers(environment):
            path = option(environment, "identity_file", "")
            if path:
                self.write(path)
            log.info(self.summary_line())
        if sends(environment) and self.flusher is not None:
            self.flusher.kill(block=False)
            self.flusher = None

    def on_quit(self, **_kw) -> None:
        """Headless distributed runs: the last worker batches arrive after test_stop."""
        environment = self.environment
        if environment is not None and environment.runner is not None and gathers(environment):
            path = option(environment, "identity_file", "")
            if path and self.written != len(self.records):  # the local runner's file is complete already
                self.write(path)


def add_options(parser) -> None:
    parser.add_argument(
        "--identity-file",
        default="",
        env_var="LOCUST_IDENTITY_FILE",
        include_in_web_ui=False,
        help="write every response's identity headers here as JSON lines when the test stops",
    )


_installed: list[Recorder] = []


def install() -> Recorder:
    """This process's one recorder, hooked into locust's events (``--identity-file`` included).

    A locustfile calls it at import; a second call returns the same recorder and adds nothing.
    """
    if _installed:
        return _installed[0]
    recorder = Recorder()
    events.init_command_line_parser.add_listener(add_options)
    events.init.add_listener(recorder.on_init)
    events.test_start.add_listener(recorder.on_test_start)
    events.test_stop.add_listener(recorder.on_test_stop)
    events.quit.add_listener(recorder.on_quit)
    _installed.append(recorder)
    return recorder
