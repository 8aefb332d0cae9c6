"""Which server a locust run loads: ``LAB_HOSTS`` names, ``--target NAME``, the web UI's guards.

``LAB_HOSTS="name=url,name=url"`` (the compose file sets it) names the servers.
In the web UI they are the first choice of the start form (``webui.py``); on the
command line ``--target NAME`` picks one.  Either way the chosen server's URL
becomes ``environment.host`` before the test starts, so locust's header, the
workers and every request use it.  ``none`` keeps the Host field.

What it does not know: the scenarios and the records.
"""

from __future__ import annotations

import logging
import os
import sys
from functools import cache

from locust import events

from loadtest.generator import access, webui
from loadtest.generator.process import gathers, option
from loadtest.registry.hosts import parse_hosts

log = logging.getLogger("wsgi-lab")


@cache
def lab_hosts() -> dict[str, str]:
    """The servers ``LAB_HOSTS`` names, read once per process (every request's name uses them)."""
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


@cache
def server_name(url: str) -> str:
    """The LAB_HOSTS name of ``url``, else its host:port: what a request's name says it loaded."""
    return webui.server_name(url, lab_hosts())


def add_options(parser) -> None:
    parser.add_argument(
        "--target",
        default=webui.NO_TARGET,
        choices=[webui.NO_TARGET, *lab_hosts()],
        env_var="LOCUST_TARGET",
        # The web UI's own picker (loadtest/generator/webui.py) sends this field.
        include_in_web_ui=False,
        help="server to load, from LAB_HOSTS (overrides Host); 'none' keeps the Host field",
    )


def pick_target(environment, **_kw) -> None:
    """``--target NAME`` (command line or LOCUST_TARGET): its URL is the run's host from the start."""
    if not gathers(environment):
        return
    target = option(environment, "target", webui.NO_TARGET)
    if not target or target == webui.NO_TARGET:
        return
    hosts = lab_hosts()
    if target not in hosts:
        log.error("--target %s is not in LAB_HOSTS (%s)", target, ", ".join(hosts) or "empty")
        return
    environment.host = hosts[target]
    log.info("target %s -> %s", target, environment.host)


def install() -> None:
    """``--target`` on the command line, and the pick at ``init`` (install it before the UI's hooks)."""
    events.init_command_line_parser.add_listener(add_options)
    events.init.add_listener(pick_target)
