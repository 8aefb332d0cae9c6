"""locust's web UI when LAB_BIND_ADDR is not loopback: a login, and only the lab's servers.

Real locust processes (the project's locustfile) and a real headless Chromium,
as in tests/e2e/test_locust_ui.py (helpers in tests/browsing.py). The UI itself always
listens on 127.0.0.1 here: ``LAB_BIND_ADDR=0.0.0.0`` is what the compose file
passes to the master when it publishes the UI on every interface, and it is
that setting, not the socket, that turns the guards on. Every URL loaded or
refused is a server this module started on 127.0.0.1: lab-single is in
LAB_HOSTS; lab-threaded is not, and plays the arbitrary host.

The loopback default is tests/e2e/test_locust_ui.py, unchanged.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browsing import LocustPage, locust_ui, requests_served, screenshot
from tests.support import ROOT, free_port, lab_server

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

PASSWORD = "correct horse battery"
EXPOSED = {"LAB_BIND_ADDR": "0.0.0.0", "LAB_UI_PASSWORD": PASSWORD}
REFUSED = "is not one of this lab's servers"
START_FORM = {"user_count": "2", "spawn_rate": "2", "user_classes": "IoUser", "sleep_s": "0.1"}


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[dict[str, str], str]]:
    """(LAB_HOSTS with lab-single, the URL of lab-threaded: started here but not in LAB_HOSTS)."""
    single, threaded = free_port(), free_port()
    with lab_server("single", single), lab_server("threaded", threaded):
        yield {"lab-single": f"http://127.0.0.1:{single}"}, f"http://127.0.0.1:{threaded}"


def raw(base: str, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, Location) of one request without a session, redirects not followed."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location", "")
    finally:
        conn.close()


def refusal_alert(ui: LocustPage) -> str:
    alert = ui.page.locator("[role=alert]").filter(has_text=REFUSED)
    alert.wait_for(timeout=15_000)
    return alert.inner_text()


def test_exposed_ui_asks_for_the_password_first(browser, lab, tmp_path: Path) -> None:
    hosts, _ = lab
    with locust_ui(hosts, tmp_path / "locust.log", env=EXPOSED) as base:
        # Without a session every page and action answers with the way to the login page.
        for method, path in [("GET", "/"), ("GET", "/stats/requests"), ("GET", "/wsgi-lab/state"),
                             ("GET", "/wsgi-lab/identity.jsonl"), ("POST", "/stop")]:  # fmt: skip
            status, location = raw(base, method, path)
            assert (status, urllib.parse.urlsplit(location).path) == (302, "/login"), (method, path)
        before = requests_served(hosts["lab-single"])
        status, location = raw(base, "POST", "/swarm", {**START_FORM, "host": hosts["lab-single"]})
        assert (status, urllib.parse.urlsplit(location).path) == (302, "/login")
        assert requests_served(hosts["lab-single"]) == before + 1  # this /whoami only: nothing started

        # The login page, by hand: a wrong password is told so and gets nowhere.
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            login = context.new_page()
            login.goto(base + "/")
            assert urllib.parse.urlsplit(login.url).path == "/login"
            login.fill("input[name=password]", "not the password")
            login.get_by_role("button", name="Log in").click()
            login.get_by_text("Wrong password.").wait_for(timeout=15_000)
            screenshot(login, "locust-ui-exposed-wrong-password")
            assert login.query_selector("#wsgi-lab-target-select") is None
        finally:
            context.close()

        ui = LocustPage(browser, base, password=PASSWORD)
        try:
            ui.screenshot("locust-ui-exposed-after-login")
            ui.pick("lab-single")
            ui.start()
            row = ui.wsgi_lab_row("lab-single", min_responses=3)
            assert row["processes"] == "1"
            ui.stop_test()
            assert ui.errors == [], ui.errors
        finally:
            ui.close()
    log = (tmp_path / "locust.log").read_text()
    assert "wrong password from 127.0.0.1" in log
    assert PASSWORD not in log  # a password the user chose is never printed


def test_exposed_ui_refuses_a_host_outside_lab_hosts_and_sends_it_nothing(
    browser,
    lab,
    tmp_path: Path,
) -> None:
    hosts, other = lab
    with locust_ui(hosts, tmp_path / "locust.log", env=EXPOSED) as base:
        ui = LocustPage(browser, base, password=PASSWORD)
        try:
            before = requests_served(other)
            ui.pick("none")
            hint = ui.page.inner_text("#wsgi-lab-target-hint")
            assert "LAB_ALLOW_ANY_HOST=1 on the master allows any URL" in hint
            ui.page.fill("form input[name=host]", other)
            ui.start()
            text = refusal_alert(ui)
            assert text.startswith(f"{other} {REFUSED}") and hosts["lab-single"] in text
            assert "LAB_ALLOW_ANY_HOST=1" in text
            ui.screenshot("locust-ui-exposed-host-refused")
            assert "Start new load test" in ui.page.inner_text("body")  # nothing started
            # POST /user may set a user class's host: refused the same way.
            answer = ui.context.request.post(
                base + "/user",
                data=json.dumps({"user_class_name": "IoUser", "host": other}),
                headers={"Content-Type": "application/json"},
            )
            assert answer.status == 403 and REFUSED in answer.json()["message"]
            assert requests_served(other) == before + 1  # this /whoami only: no connection, no request
            assert ui.errors == [], ui.errors
        finally:
            ui.close()
    log = (tmp_path / "locust.log").read_text()
    assert re.search(rf"ERROR/wsgi-lab: {re.escape(other)} {REFUSED}", log), log[-2000:]


def test_allow_any_host_loads_it_and_a_generated_password_is_logged_once(
    browser,
    lab,
    tmp_path: Path,
) -> None:
    hosts, other = lab
    log = tmp_path / "locust.log"
    with locust_ui(hosts, log, env={"LAB_BIND_ADDR": "0.0.0.0", "LAB_ALLOW_ANY_HOST": "1"}) as base:
        found = re.findall(r"web UI login: password (\S+) \(generated", log.read_text())
        assert len(found) == 1, log.read_text()[-2000:]
        ui = LocustPage(browser, base, password=found[0])
        try:
            before = requests_served(other)
            ui.pick("none")
            assert "any URL is accepted (LAB_ALLOW_ANY_HOST=1)" in ui.page.inner_text("#wsgi-lab-target-hint")
            ui.page.fill("form input[name=host]", other)
            ui.start()
            netloc = urllib.parse.urlsplit(other).netloc
            row = ui.wsgi_lab_row(netloc, min_responses=3)  # named by host:port: not a LAB_HOSTS name
            assert ui.header_host() == other
            assert row["processes"] == "1"
            ui.stop_test()
            assert requests_served(other) - before >= 3
            assert ui.errors == [], ui.errors
        finally:
            ui.close()
    assert log.read_text().count(found[0]) == 1  # printed once, in the master's log


def test_a_bad_switch_stops_locust_with_one_line() -> None:
    env = {**os.environ, "LAB_ALLOW_ANY_HOST": "yes"}
    cmd = [sys.executable, "-m", "locust", "-f", "loadtest/generator/locustfile.py", "--headless", "-t", "1"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["locust: LAB_ALLOW_ANY_HOST='yes': expected 1 or 0"]
