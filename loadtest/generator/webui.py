"""wsgi-lab's extension of locust's web UI: pick the server first, see who served it.

Locust 2.x's UI is a prebuilt React app; this module extends it only through the
hooks locust documents -- template arguments (``extended_tabs``, ``extended_tables``,
``extended_csv_files``), an ``extended_stats`` entry in ``/stats/requests``, and
routes and request hooks on ``environment.web_ui.app`` -- plus one script of its
own (``webui.js``) that the index page loads.  What each part does:

* **The server picker.**  ``webui.js`` puts a "Server to load" list (the
  ``LAB_HOSTS`` names, in their order) at the top of the start form and keeps the
  Host field equal to the chosen server's URL, so the Host locust shows in its
  header is the server being loaded.  On ``POST /swarm`` a chosen ``target``
  replaces the form's ``host`` *before* locust's own handler reads it: locust then
  sets ``environment.host`` from it, answers with it, and sends it to every worker
  in the spawn message -- one host for the whole run, from the first request on.
* **Reachability.**  The same hook refuses to start a run whose host does not
  accept a TCP connection from here, with a message (shown in the form and logged)
  that names the servers to use instead; inside a container it says that
  ``localhost`` is the container itself.  Before that, a host the allowlist
  refuses (:mod:`loadtest.generator.access`, when the UI is reachable from other machines)
  is refused without any connection, and a request without a login goes on to
  locust's own handler, which sends it to the login page.
* **The wsgi-lab tab.**  One row per server loaded in this session: processes and
  (process, thread) lanes seen, requests in flight in the last second and at most,
  and :func:`loadtest.measure.evidence.answer`'s sentence.  The row of the running
  test is recomputed from the identity records the master gathers (workers forward
  them), so it is live during the run and stays after it; loading another server
  adds a row.
* **The live swimlane chart.**  Above the tab's table, ``webui.js`` draws one lane
  per (process, thread or greenlet) of the running test's last ``SWIMLANE_S``
  seconds, one bar per request: pale for its time inside the app, a dark core as
  long as the CPU time it used (``X-Request-Cpu-Ms``), as the report's timelines
  do.  The data comes from ``GET /wsgi-lab/lanes`` (:func:`swimlanes`).

It knows nothing of how records are collected (``recorder.py``'s ``Recorder``) and
never imports the recorder or the locustfile.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request, send_file
from werkzeug.datastructures import ImmutableMultiDict

from loadtest.generator import access
from loadtest.inserver.usage import USAGE_PATH
from loadtest.measure import evidence, rounds
from loadtest.registry import targets
from loadtest.registry.records import ComparisonRow
from loadtest.registry.scenarios import SCENARIO_CLASSES

log = logging.getLogger("wsgi-lab")

TAB = "wsgi-lab"
SCRIPT = Path(__file__).with_name("webui.js")
NO_TARGET = "none"
# What a freshly opened start form proposes: the io scenario with enough users to
# fill any bounded model (4-8 slots) within a second, so capacity shows at once.
DEFAULT_CLASSES = [SCENARIO_CLASSES["io"]]
DEFAULT_USERS = 10
DEFAULT_SPAWN_RATE = 10.0
CONNECT_TIMEOUT_S = 2.0
# The live swimlane chart: the last SWIMLANE_S seconds of the running test (at least
# SWIMLANE_MIN_S wide, so a fresh run does not fill the width with three bars), at most
# SWIMLANE_LANES lanes (the busiest) and SWIMLANE_BARS bars (the latest).
SWIMLANE_S = 15.0
SWIMLANE_MIN_S = 5.0
SWIMLANE_LANES = 24
SWIMLANE_BARS = 4000
# Live rows are recomputed from at most this many recent records: the counts stay
# exact for ordinary runs and a long hello run cannot stall the UI's stats poll.
LIVE_RECORDS = 50_000
# Recompute the running test's row at most this often, however many tabs poll.
REFRESH_S = 1.0
NOW_WINDOW_S = 1.0

COLUMNS = [
    ("server", "server"),
    ("scenario", "scenario"),
    ("users", "users"),
    ("responses", "responses"),
    ("processes", "processes"),
    ("lanes", "thread lanes"),
    ("in_flight_now", "in flight (last 1 s)"),
    ("max_in_flight", "max in flight"),
    ("answer", "answer"),
]


# --------------------------------------------------------------------------- names


def server_name(url: str, hosts: dict[str, str]) -> str:
    """The LAB_HOSTS name of ``url``, else its host:port (what a person typed)."""
    clean = url.strip().rstrip("/")
    for name, known in hosts.items():
        if known == clean:
            return name
    return urlsplit(clean).netloc or clean or "(no host)"


def scenario_of(class_names: Iterable[str]) -> str:
    by_class = {cls: name for name, classes in SCENARIO_CLASSES.items() for cls in classes.split()}
    names = sorted({by_class.get(c, c) for c in class_names})
    return names[0] if len(names) == 1 else "+".join(names) or "?"


# --------------------------------------------------------------------------- reachability


def in_container() -> bool:
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def unreachable(url: str, hosts: dict[str, str]) -> str | None:
    """None if ``url``'s host accepts a TCP connection from here, else the message to show."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((hostname, port), timeout=CONNECT_TIMEOUT_S).close()
        return None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    message = f"{url} cannot be reached from the load generator ({reason})."
    if access.is_loopback(hostname) and in_container():
        message += " Here localhost is the locust container itself, not your machine."
    if hosts:
        message += " Pick a server in the list, or use a service name: " + ", ".join(hosts.values()) + "."
    return message


# --------------------------------------------------------------------------- evidence rows


def swimlanes(records: list[dict], server: str) -> dict[str, Any]:
    """The live chart's data: lanes of the last SWIMLANE_S seconds, bars relative to the latest end.

    Each lane is ``{pid, thread, kind, bars: [[start, end, cpu_s], ...]}`` with
    times in seconds before ``now`` (the last response's end, so the chart's
    right edge is the server's clock, not the browser's); ``cpu_s`` is None when
    the server did not say.
    """
    ok = evidence.served(records[-LIVE_RECORDS:])
    end = max((r["end"] for r in ok), default=0.0)
    since = end - SWIMLANE_S
    recent = [r for r in ok if r["end"] > since][-SWIMLANE_BARS:]
    lanes: dict[tuple[str, str], dict[str, Any]] = {}
    for r in recent:
        lane = lanes.setdefault(
            (r["pid"], r["thread"]),
            {"pid": r["pid"], "thread": r["thread"], "kind": r.get("lane_kind") or "", "bars": []},
        )
        cpu = r["cpu_ms"] / 1000.0 if r["cpu_ms"] is not None else None
        lane["bars"].append([round(r["start"] - end, 4), round(r["end"] - end, 4), cpu])
    busiest = sorted(lanes.values(), key=lambda lane: -sum(b[1] - b[0] for b in lane["bars"]))
    shown = sorted(
        busiest[:SWIMLANE_LANES],
        key=lambda lane: (evidence.natural(lane["pid"]), evidence.natural(lane["thread"])),
    )
    first = min((r["start"] for r in recent), default=end)
    return {
        "server": server,
        # the whole run while it is shorter than SWIMLANE_S, but never under SWIMLANE_MIN_S
        "window_s": round(min(max(end - first, SWIMLANE_MIN_S), SWIMLANE_S), 1),
        "lanes": shown,
        "hidden_lanes": max(len(lanes) - SWIMLANE_LANES, 0),
    }


def in_flight_now(ok: list[dict], end: float) -> int:
    """Most requests inside the app at once during the last NOW_WINDOW_S seconds of responses."""
    since = end - NOW_WINDOW_S
    return evidence.max_in_flight((max(r["start"], since), r["end"]) for r in ok if r["end"] > since)


def evidence_row(
    name: str, scenario: str, users: int, sleep_s: float, records: list[dict], interpreter: dict | None = None
) -> dict[str, Any]:
    """What the wsgi-lab tab shows for one server, from its identity records and its interpreter."""
    recent = records[-LIVE_RECORDS:]
    facts = evidence.facts(recent)
    ok = evidence.served(recent)
    window = evidence.load_window(recent)
    span = (window[1] - window[0]) if window else 0.0
    row: dict[str, Any] = {
        **facts,
        "users": users,
        "rps": len(recent) / span if span > 0 else 0.0,
        "capacity": targets.capacity(name, users),
        "request_cores": rounds.request_cores(recent, span),  # so the live sentence can word turn-taking
        "interpreter": interpreter or {},  # no GIL claim for a server whose GIL was off
    }
    if scenario == "io":
        ceiling = evidence.io_ceiling(users, sleep_s, row["capacity"])
        row["io_ceiling"] = ceiling
        row["io_efficiency"] = row["rps"] / ceiling if ceiling else None
    last_end = max((r["end"] for r in ok), default=time.time())
    counted = f"{facts['with_identity']} of {facts['requests']}"
    return {
        "server": name,
        "scenario": scenario,
        "users": users,
        "responses": counted + (f" (last {LIVE_RECORDS})" if len(records) > LIVE_RECORDS else ""),
        "processes": facts["pids"],
        "lanes": facts["threads"],
        "in_flight_now": in_flight_now(ok, last_end),
        "max_in_flight": facts["max_in_flight"],
        "answer": evidence.answer(name, scenario, live_row(name, scenario, row))
        if records
        else f"{name}: no responses yet",
    }


def live_row(name: str, scenario: str, figures: dict[str, Any]) -> ComparisonRow:
    """The live figures as the record a result row is, so the sentence is worded by the same rule."""
    return ComparisonRow.from_dict({**figures, "scenario": scenario, "target": name})


@dataclass
class Board:
    """The wsgi-lab tab's rows: one per server, the running test's row kept live."""

    recorder: Any  # has .records (raw rows of the current test) and .as_dicts()
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)  # name, scenario, sleep_s
    seen: int = -1
    refreshed: float = 0.0

    def start(self, name: str, scenario: str, sleep_s: float, interpreter: dict | None = None) -> None:
        self.current = {"name": name, "scenario": scenario, "sleep_s": sleep_s, "interpreter": interpreter}
        self.rows.pop(name, None)
        self.rows[name] = evidence_row(name, scenario, 0, sleep_s, [])
        self.seen, self.refreshed = -1, 0.0

    def refresh(self, users: int) -> list[dict[str, Any]]:
        count = len(self.recorder.records)
        changed = count != self.seen or self.rows.get(self.current.get("name"), {}).get("users", 0) < users
        if self.current and changed and time.monotonic() - self.refreshed >= REFRESH_S:
            self.seen, self.refreshed = count, time.monotonic()
            cur = self.current
            users = max(users, self.rows[cur["name"]]["users"])
            records = self.recorder.as_dicts()
            self.rows[cur["name"]] = evidence_row(
                cur["name"], cur["scenario"], users, cur["sleep_s"], records, cur["interpreter"]
            )
        return list(self.rows.values())


# --------------------------------------------------------------------------- wiring into locust


def install(environment, hosts: dict[str, str], recorder, guard: access.Access) -> Board:
    """Add the picker, the reachability check and the wsgi-lab tab to ``environment.web_ui``.

    ``recorder`` holds the current test's identity records (``.records``, ``.as_dicts()``);
    ``guard`` says which hosts a run may load.
    """
    web_ui = environment.web_ui
    board = Board(recorder=recorder)
    web_ui.template_args["extended_tabs"] = [{"title": TAB, "key": TAB}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB, "structure": [{"key": key, "title": title} for key, title in COLUMNS]}
    ]
    web_ui.template_args["extended_csv_files"] = [
        {"href": "./wsgi-lab/identity.jsonl", "title": "Download wsgi-lab identity records (JSON lines)"}
    ]
    propose_defaults(environment)
    base = (getattr(environment.parsed_options, "web_base_path", "") or "").rstrip("/")
    blueprint = routes(environment, hosts, recorder, guard)
    web_ui.app.register_blueprint(blueprint, url_prefix=f"{base}/{TAB}")
    web_ui.app.before_request(lambda: resolve_target(environment, hosts, guard))
    web_ui.app.after_request(lambda response: extend_response(environment, board, response))
    environment.events.test_start.add_listener(lambda **_kw: start_row(environment, hosts, board))
    return board


def start_row(environment, hosts: dict[str, str], board: Board) -> None:
    """A new test (form, HTTP API or headless): its server gets a fresh row."""
    classes = [cls.__name__ for cls in environment.user_classes]
    name = server_name(environment.host or "", hosts)
    sleep_s = getattr(environment.parsed_options, "sleep_s", 0.5)
    board.start(name, scenario_of(classes), sleep_s, server_interpreter(environment.host or ""))
    log.info("loading %s (%s) with %s", name, environment.host, ", ".join(classes))


def server_interpreter(host: str) -> dict:
    """The interpreter the server reports at ``/_lab/usage`` ({} when it does not answer)."""
    try:
        with urllib.request.urlopen(host.rstrip("/") + USAGE_PATH, timeout=CONNECT_TIMEOUT_S) as r:
            found = json.loads(r.read()).get("interpreter")
    except (OSError, ValueError, AttributeError):
        return {}
    return found if isinstance(found, dict) else {}


def propose_defaults(environment) -> None:
    """Users and spawn rate the start form proposes, unless given on the command line."""
    options = environment.parsed_options
    if options is None:
        return
    if options.num_users is None:
        options.num_users = DEFAULT_USERS
    if options.spawn_rate in (None, 1):  # not given (locust's default is None or 1)
        options.spawn_rate = DEFAULT_SPAWN_RATE


def routes(environment, hosts: dict[str, str], recorder, guard: access.Access) -> Blueprint:
    bp = Blueprint(TAB, __name__)
    login = environment.web_ui.auth_required_if_enabled  # locust's login, when it asks for one

    @bp.route("/ui.js")
    @login
    def script() -> Response:
        return send_file(SCRIPT, mimetype="text/javascript", max_age=0)

    @bp.route("/state")
    @login
    def state() -> Response:
        """What the start form needs: the servers, the current host, the classes to tick."""
        ran = environment.runner.stats.num_requests > 0
        classes = [cls.__name__ for cls in environment.user_classes] if ran else []
        return jsonify(
            {
                "targets": [
                    {"name": name, "url": url, "explanation": targets.explanation(name)}
                    for name, url in hosts.items()
                ],
                "host": environment.host or "",
                "classes": classes or DEFAULT_CLASSES,
                "other": guard.other_hint(),
            }
        )

    @bp.route("/lanes")
    @login
    def lanes() -> Response:
        """The live swimlane chart's data for the running (or last) test (:func:`swimlanes`)."""
        return jsonify(swimlanes(recorder.as_dicts(), server_name(environment.host or "", hosts)))

    @bp.route("/identity.jsonl")
    @login
    def identity() -> Response:
        lines = (json.dumps(r, separators=(",", ":")) + "\n" for r in recorder.as_dicts())
        return Response(lines, mimetype="application/jsonl")

    return bp


def is_start(endpoint: str | None) -> bool:
    return endpoint == "locust.swarm" and request.method == "POST"


def resolve_target(environment, hosts: dict[str, str], guard: access.Access) -> Response | None:
    """Before locust's /swarm: the chosen target becomes the form's host; refuse a host the
    allowlist refuses (no connection made) or one that cannot be reached.

    Without a login (when one is asked for) it does nothing: locust's handler refuses.
    """
    if not is_start(request.endpoint) or not access.may_act(environment.web_ui):
        return None
    form = request.form.copy()
    target = form.get("target", NO_TARGET) or NO_TARGET
    if target != NO_TARGET:
        if target not in hosts:
            message = f"unknown server {target!r}: LAB_HOSTS names " + (", ".join(hosts) or "none")
            log.error(message)
            return jsonify({"success": False, "message": message, "host": environment.host})
        form["host"] = hosts[target]
        request.form = ImmutableMultiDict(form)  # werkzeug caches the parsed form on the request
    host = form.get("host") or environment.host or ""
    running = environment.runner is not None and environment.runner.state in ("running", "spawning")
    problem = guard.refusal(host) if host else None
    if host and not problem and not running:
        problem = unreachable(host, hosts)
    if problem:
        log.error(problem)
        return jsonify({"success": False, "message": problem, "host": host})
    return None


def extend_response(environment, board: Board, response: Response) -> Response:
    endpoint = request.endpoint
    if endpoint == "locust.index" and response.mimetype == "text/html":
        page = response.get_data(as_text=True)
        tag = f'<script type="module" src="./{TAB}/ui.js"></script>'
        response.set_data(page.replace("</body>", f"{tag}\n</body>", 1))
    elif endpoint == "locust.request_stats" and response.is_json:
        users = environment.runner.user_count if environment.runner else 0
        data = response.get_json()
        data["extended_stats"] = [{"key": TAB, "data": board.refresh(users)}]
        response.set_data(json.dumps(data))
    return response


def report_unreachable(environment, hosts: dict[str, str]) -> None:
    """Where requests are made: log once per test when the host refuses or cannot be resolved.

    A worker's log reaches the master's LOGS tab; the message names the servers to use.
    """
    told: set[str] = set()
    environment.events.test_start.add_listener(lambda **_kw: told.clear())

    def on_request(exception=None, **_kw) -> None:
        host = environment.host or ""
        if host in told or not isinstance(exception, ConnectionRefusedError | socket.gaierror):
            return
        told.add(host)
        log.error(unreachable(host, hosts) or f"{host}: {exception!r}")

    environment.events.request.add_listener(on_request)
