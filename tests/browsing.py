"""Helpers of the browser tests: where Chromium is, screenshots, and a locust web UI driven in it.

The ``browser`` fixture itself is in ``conftest.py``; the skip/``REQUIRE_BROWSER`` rule is there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtest.answers.probe import CHROMIUM
from tests.support import ROOT, free_port, stop

# Where Chromium is and its flags (no phoning home, no QUIC): make answers' browser run's, declared once.
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_HOST_CAP = 6  # Chromium's HTTP/1.1 connections per host (kMaxSocketsPerGroup)


def find_chromium() -> str | None:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def screenshot(page, name: str) -> Path:
    """A full-page PNG in test-artifacts/ (git-ignored), checked to be more than a blank page."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def lab_hosts(servers: dict[str, str]) -> str:
    return ",".join(f"{name}={url}" for name, url in servers.items())


def wait_for_page(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"locust exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def locust_ui(
    servers: dict[str, str], log: Path, workers: int = 0, env: dict[str, str] | None = None
) -> Iterator[str]:
    """locust's web UI (and ``workers`` local worker processes) with LAB_HOSTS = ``servers``.

    ``env`` adds variables (the web UI's guards); it always listens on 127.0.0.1 only.
    """
    port = free_port()
    master_port = free_port()
    env = {**os.environ, "LAB_HOSTS": lab_hosts(servers), "PYTHONUNBUFFERED": "1", **(env or {})}
    base = [sys.executable, "-m", "locust", "-f", "loadtest/generator/locustfile.py"]
    ui = [*base, "--web-host", "127.0.0.1", "--web-port", str(port)]
    if workers:
        ui += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port)]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
    procs: list[subprocess.Popen] = []
    with log.open("w") as out:
        try:
            for cmd in [ui] + [worker] * workers:
                procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
            wait_for_page(f"http://127.0.0.1:{port}/", procs[0])
            yield f"http://127.0.0.1:{port}"
        finally:
            for proc in reversed(procs):
                stop(proc)


def requests_served(url: str) -> int:
    with urllib.request.urlopen(f"{url}/whoami", timeout=10) as r:
        return json.loads(r.read())["requests_served"]


class LocustPage:
    """One Chromium tab on locust's web UI, recording console errors."""

    def __init__(self, browser, base: str, password: str | None = None) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.goto(base + "/")
        if password is not None:
            self.log_in(password)
        self.page.wait_for_selector("#wsgi-lab-target-select", timeout=15_000)

    def log_in(self, password: str) -> None:
        """locust's login page (``--web-login``), as a person fills it in."""
        self.page.wait_for_selector("input[name=password]", timeout=15_000)
        self.page.fill("input[name=password]", password)
        self.page.get_by_role("button", name="Log in").click()

    # --- the start form
    def targets(self) -> list[str]:
        return self.page.eval_on_selector_all("#wsgi-lab-target-select option", "os => os.map(o => o.value)")

    def ticked_classes(self) -> list[str]:
        return self.page.evaluate(
            """() => [...document.querySelectorAll('tbody tr')]
                 .filter(r => r.cells.length >= 2 && r.cells[0].querySelector('input:checked'))
                 .map(r => r.cells[1].textContent.trim())"""
        )

    def wait_for_classes(self, wanted: list[str]) -> None:
        deadline = time.monotonic() + 10
        while self.ticked_classes() != wanted and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.ticked_classes() == wanted

    def field(self, name: str) -> str:
        return self.page.input_value(f"form input[name={name}]")

    def pick(self, target: str) -> None:
        self.page.select_option("#wsgi-lab-target-select", target)

    def start(self) -> None:
        self.page.get_by_role("button", name="Start", exact=True).click()

    def new_test(self) -> None:
        self.page.get_by_role("button", name="New", exact=True).click()
        self.page.wait_for_selector("text=Start new load test")
        self.page.wait_for_selector("#wsgi-lab-target-select")

    def stop_test(self) -> None:
        self.page.get_by_role("button", name="Stop", exact=True).click()
        self.page.wait_for_selector("text=STOPPED", timeout=20_000)

    # --- what the page shows
    def header_host(self) -> str:
        return self.page.locator("xpath=//p[normalize-space()='Host']/following-sibling::*[1]").inner_text()

    def tab(self, title: str) -> None:
        self.page.get_by_role("tab", name=title).click()

    def table(self) -> list[dict[str, str]]:
        return self.page.evaluate(
            """() => {
                 const t = document.querySelector('table');
                 if (!t) return [];
                 const heads = [...t.querySelectorAll('thead th')].map(h => h.textContent.trim());
                 return [...t.querySelectorAll('tbody tr')].map(r =>
                   Object.fromEntries([...r.cells].map((c, i) => [heads[i], c.innerText])));
               }"""
        )

    def wsgi_lab_row(self, server: str, min_responses: int, timeout: float = 30) -> dict[str, str]:
        """The wsgi-lab tab's row of ``server`` once it counts ``min_responses`` responses."""
        self.tab("wsgi-lab")
        deadline = time.monotonic() + timeout
        while True:
            rows = {r.get("server"): r for r in self.table()}
            row = rows.get(server)
            if row and int(row["responses"].split()[0]) >= min_responses:
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"no wsgi-lab row for {server} with {min_responses} responses: {rows}")
            time.sleep(0.5)

    def swimlanes(self, server: str, min_lanes: int, min_bars: int, timeout: float = 30) -> dict:
        """The live chart above the wsgi-lab table once it draws ``server``'s lanes and bars."""
        self.tab("wsgi-lab")
        deadline = time.monotonic() + timeout
        while True:
            chart = self.page.evaluate(
                """() => {
                     const svg = document.getElementById('wsgi-lab-swimlanes');
                     if (!svg || !svg.isConnected) return null;
                     return {
                       server: svg.dataset.server,
                       lanes: [...svg.querySelectorAll('g[data-lane]')].map(g => g.dataset.lane),
                       walls: svg.querySelectorAll('rect.wall').length,
                       cores: svg.querySelectorAll('rect.cpu').length,
                       aboveTable: svg.nextElementSibling && svg.nextElementSibling.tagName === 'TABLE',
                     };
                   }"""
            )
            drawn = chart and chart["server"] == server and chart["walls"] >= min_bars
            if drawn and len(chart["lanes"]) >= min_lanes:
                return chart
            if time.monotonic() > deadline:
                raise AssertionError(f"no chart of {server}, {min_lanes} lanes, {min_bars} bars: {chart}")
            time.sleep(0.5)

    def stats_names(self) -> list[str]:
        self.tab("statistics")
        self.page.wait_for_selector("table tbody tr")
        return [r.get("Name", "") for r in self.table()]

    def screenshot(self, name: str) -> Path:
        return screenshot(self.page, name)

    def close(self) -> None:
        self.context.close()
