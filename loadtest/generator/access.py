"""Who may use locust's web UI, and what it may load, once other machines can reach it.

The compose stack publishes the web UI on ``LAB_BIND_ADDR``. On loopback only
this machine's users reach it, and it stays open as locust ships it. On any other
address, whoever reaches port 8089 could start a load test of any size against
any address the stack can reach (an open relay for a denial of service), so two
guards turn on:

* **A login**, through locust's own ``--web-login`` extension point: locust puts
  Flask-Login's ``login_required`` on its routes and renders its login page from
  ``web_ui.auth_args``; this module supplies the password form, the route that
  checks it and the user loader. One password: ``LAB_UI_PASSWORD``, else one
  generated at start and printed once in the master's log. ``LAB_UI_LOGIN=1|0``
  forces the login on or off whatever the address.
* **An allowlist of targets**: a run may load only the servers of ``LAB_HOSTS``
  and the same servers' published URLs on this machine
  (``http://LAB_PUBLIC_HOST:<LAB_PUBLISHED_PORTS port>``, what workers on other
  machines load), unless ``LAB_ALLOW_ANY_HOST=1``. A refused host is refused
  before anything connects to it.

Policy choices and known limits:

- one shared password and no user names: the UI has one kind of user;
- sessions are signed with a key made at start, so restarting the master logs
  everyone out; the cookie is SameSite=Lax, so another site's page cannot post
  ``/swarm`` with it;
- without ``--tls-cert``/``--tls-key`` the password crosses the network in clear;
- locust's master port (5557) has no authentication of its own: a stranger's
  worker could join, receive the URL to load and send figures, but not choose the
  target. ``LAB_MASTER_BIND_ADDR`` publishes it on its own address.

It knows nothing of the server picker or the evidence tab (``webui``) and sends
no request itself.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Response, jsonify, redirect, request, session, url_for
from flask_login import UserMixin, current_user, login_user

from loadtest.registry.exposure import BIND_ENV, DEFAULT_BIND, is_loopback, specific_address

log = logging.getLogger("wsgi-lab")

PASSWORD_ENV = "LAB_UI_PASSWORD"
LOGIN_ENV = "LAB_UI_LOGIN"
ANY_HOST_ENV = "LAB_ALLOW_ANY_HOST"
PUBLIC_HOST_ENV = "LAB_PUBLIC_HOST"
PUBLISHED_ENV = "LAB_PUBLISHED_PORTS"
LOGIN_PATH = "/wsgi-lab/login"
PASSWORD_FIELD = "password"
OPERATOR = "operator"  # the one user id a session can carry


# --------------------------------------------------------------------------- settings


def flag(name: str, value: str) -> bool | None:
    """``"1"``/``"0"`` as True/False, ``""`` as None (not set); anything else is an error."""
    value = value.strip()
    if value in ("", "1", "0"):
        return None if value == "" else value == "1"
    raise ValueError(f"{name}={value!r}: expected 1 or 0")


def parse_ports(spec: str) -> dict[str, int]:
    """``"lab-single=8001,lab-threaded=8002"`` -> ``{"lab-single": 8001, ...}``."""
    ports: dict[str, int] = {}
    for item in filter(None, (raw.strip() for raw in spec.split(","))):
        name, _, port = item.partition("=")
        if not name.strip() or not port.strip().isdigit():
            raise ValueError(f"{PUBLISHED_ENV}: bad entry {item!r}: expected name=port")
        ports[name.strip()] = int(port)
    return ports


def origin(url: str) -> str | None:
    """``scheme://host:port`` of ``url``, lower-case, port made explicit; None if it has no host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host.lower()}:{port}"


def published_urls(hosts: Mapping[str, str], ports: Mapping[str, int], public_host: str) -> dict[str, str]:
    """name -> ``http://public_host:port`` for each LAB_HOSTS server published on this machine."""
    if not public_host:
        return {}
    host = f"[{public_host}]" if ":" in public_host else public_host
    return {name: f"http://{host}:{ports[name]}" for name in hosts if name in ports}


@dataclass(frozen=True)
class Access:
    """What the environment asks for: who may log in and which URLs a run may load."""

    bind_addr: str
    login: bool
    password: str
    password_generated: bool
    any_host: bool
    hosts: Mapping[str, str]  # LAB_HOSTS
    published: Mapping[str, str]  # name -> the same server's URL on this machine's public address

    @property
    def exposed(self) -> bool:
        """The web UI is published beyond this machine (the one judgement both guards follow)."""
        return not is_loopback(self.bind_addr)

    @property
    def allowlist(self) -> bool:
        return self.exposed and not self.any_host

    def allowed(self, url: str) -> bool:
        if not self.allowlist:
            return True
        known = {origin(u) for u in [*self.hosts.values(), *self.published.values()]}
        return origin(url) in known - {None}

    def refusal(self, url: str) -> str | None:
        """None if a run may load ``url``, else the message for the form and the log."""
        if self.allowed(url):
            return None
        servers = ", ".join(self.hosts.values()) or "none (LAB_HOSTS is empty)"
        published = ", ".join(self.published.values())
        return (
            f"{url} is not one of this lab's servers, and this web UI is reachable from other machines"
            f" ({BIND_ENV}={self.bind_addr}), so it loads only these: {servers}"
            + (f"; published on this machine: {published}" if published else "")
            + f". To load any URL, start the master with {ANY_HOST_ENV}=1."
        )

    def other_hint(self) -> str:
        """What the start form says under "other: the Host field below"."""
        if not self.exposed:
            return "locust loads whatever URL the Host field holds"
        if self.any_host:
            return f"any URL is accepted ({ANY_HOST_ENV}=1), though other machines reach this web UI"
        published = ", ".join(self.published.values())
        return (
            "only the servers in this list"
            + (f" or their published URLs ({published})" if published else "")
            + " are accepted: other machines reach this web UI"
            + f" ({ANY_HOST_ENV}=1 on the master allows any URL)."
        )


def from_env(hosts: Mapping[str, str], env: Mapping[str, str] | None = None) -> Access:
    """The settings in ``env`` (default ``os.environ``); ValueError names a bad variable."""
    env = os.environ if env is None else env
    bind_addr = env.get(BIND_ENV, "").strip() or DEFAULT_BIND
    exposed = not is_loopback(bind_addr)
    login = flag(LOGIN_ENV, env.get(LOGIN_ENV, ""))
    password = env.get(PASSWORD_ENV, "")
    public_host = env.get(PUBLIC_HOST_ENV, "").strip() or specific_address(bind_addr)
    return Access(
        bind_addr=bind_addr,
        login=exposed if login is None else login,
        password=password or secrets.token_urlsafe(12),
        password_generated=not password,
        any_host=bool(flag(ANY_HOST_ENV, env.get(ANY_HOST_ENV, ""))),
        hosts=dict(hosts),
        published=published_urls(hosts, parse_ports(env.get(PUBLISHED_ENV, "")), public_host),
    )


# --------------------------------------------------------------------------- wiring into locust


class Operator(UserMixin):
    """Whoever knows the password: the UI's one kind of user."""

    def get_id(self) -> str:
        return OPERATOR


def may_act(web_ui) -> bool:
    """The request may use the UI: its login is off, or this session has logged in."""
    return not web_ui.web_login or bool(current_user.is_authenticated)


def install(environment, access: Access) -> None:
    """The login (when locust runs with ``--web-login``) and the host guard of ``/user``."""
    web_ui = environment.web_ui
    if web_ui.web_login:
        install_login(environment, access)
    web_ui.app.before_request(lambda: refuse_user_class_host(web_ui, access))
    if access.allowlist:
        log.info(
            "web UI reachable from other machines: runs load only LAB_HOSTS servers (%s=1 allows any)",
            ANY_HOST_ENV,
        )


def install_login(environment, access: Access) -> None:
    web_ui = environment.web_ui
    app = web_ui.app
    app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    web_ui.login_manager.user_loader(lambda user_id: Operator() if user_id == OPERATOR else None)
    base = (getattr(environment.parsed_options, "web_base_path", "") or "").rstrip("/")
    web_ui.auth_args = {
        "custom_form": {
            "inputs": [{"label": "Password", "name": PASSWORD_FIELD, "is_secret": True, "is_required": True}],
            "callback_url": f"{base}{LOGIN_PATH}",
            "submit_button_text": "Log in",
        },
        "title": "wsgi-lab",
    }
    app.add_url_rule(
        f"{base}{LOGIN_PATH}", "wsgi_lab_login", lambda: check_password(access), methods=["POST"]
    )
    if access.password_generated:
        log.warning(
            "web UI login: password %s (generated at start, shown only here; set %s to choose one)",
            access.password,
            PASSWORD_ENV,
        )
    else:
        log.info("web UI login: the password is %s's", PASSWORD_ENV)


def check_password(access: Access) -> Response:
    given = request.form.get(PASSWORD_FIELD, "")
    if hmac.compare_digest(given.encode(), access.password.encode()):
        login_user(Operator())
        log.info("web UI: logged in from %s", request.remote_addr)
        return redirect(url_for("locust.index"))
    log.warning("web UI: wrong password from %s", request.remote_addr)
    session["auth_error"] = "Wrong password."
    return redirect(url_for("locust.login"))


def refuse_user_class_host(web_ui, access: Access) -> Response | None:
    """``POST /user`` may set any attribute of a user class, ``host`` included: guard that one."""
    if request.endpoint != "locust.update_user" or not may_act(web_ui):
        return None
    host = (request.get_json(force=True, silent=True) or {}).get("host")
    problem = access.refusal(str(host)) if host else None
    if problem:
        log.error(problem)
        response = jsonify({"success": False, "message": problem})
        response.status_code = 403
        return response
    return None
