"""The browser question: ``/probe`` in a headless Chromium, 10 same-URL then 10 different-URL fetches.

The server is started through the one target runner (``loadtest.run``); Chromium is Debian's
(``make browser``), driven by Playwright through ``executable_path`` -- Playwright's own browser
downloads are never used. The page's own result (``window.probeResult``: when each fetch was sent,
went on the wire and ran in the server) is what the picture draws.

Chromium aborts every request in flight with ERR_NETWORK_CHANGED when the host's interfaces change
(another job's Docker network on a shared machine); such a run is repeated, any other failure is not.
"""

from __future__ import annotations

import os
from pathlib import Path

from loadtest.answers.questions import PROBE_N, PROBE_SECONDS, PROBE_TARGET, SETTLE_S
from loadtest.registry import targets
from loadtest.run import environment
from loadtest.run.local import LocalRunner
from loadtest.run.runner import Launch

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The browser tests' flags (tests/browsing.py): no phoning home, no QUIC, so HTTP/1.1 is what is measured.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NETWORK_CHANGE_ERRORS = ("ERR_NETWORK_CHANGED", "ERR_SOCKET_NOT_CONNECTED")
ATTEMPTS = 3
RUNS = (("same URL", "same"), ("different URLs", "unique"))


class ProbeError(Exception):
    """The browser run could not be made (no Chromium, the server did not start, the page failed)."""


def missing_browser() -> str | None:
    """Why the browser run cannot happen here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (run make browser, or set CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make venv installs requirements-dev.txt)"
    return None


def one_run(browser, url: str) -> tuple[dict, list[str]]:
    context = browser.new_context(viewport={"width": 1060, "height": 900})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("requestfailed", lambda req: errors.append(f"{req.url}: {req.failure}"))
        page.goto(url)
        page.wait_for_function(
            "window.probeResult && ['done', 'error'].includes(window.probeResult.status)",
            timeout=(PROBE_N * PROBE_SECONDS + 30) * 1000,
        )
        return page.evaluate("window.probeResult"), errors
    finally:
        context.close()


def probe_url(base: str, urls: str) -> str:
    return f"{base}/probe?n={PROBE_N}&s={PROBE_SECONDS}&urls={urls}&cache=default&autorun=1"


def run(log_dir: Path) -> list[tuple[str, dict]]:
    """(label, the page's result) for the same-URL and the different-URL run; ProbeError if impossible."""
    why = missing_browser()
    if why:
        raise ProbeError(why)
    from playwright.sync_api import sync_playwright

    launch = Launch(name=PROBE_TARGET, target=targets.TARGETS[PROBE_TARGET], log_dir=log_dir)
    with LocalRunner(launch) as server:
        if not (server.start() and server.wait_ready(30)):
            raise ProbeError(f"{PROBE_TARGET}: {server.problem}")
        environment.settle(SETTLE_S)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                return [(label, attempt(browser, probe_url(server.url, urls))) for label, urls in RUNS]
            finally:
                browser.close()


def attempt(browser, url: str) -> dict:
    for _ in range(ATTEMPTS):
        result, errors = one_run(browser, url)
        if any(marker in e for e in errors for marker in NETWORK_CHANGE_ERRORS):
            continue
        if result.get("status") != "done" or errors:
            raise ProbeError(f"{url}: {result.get('error') or '; '.join(errors)}")
        return result
    raise ProbeError(f"{url}: the host's network changed during each of {ATTEMPTS} attempts")
