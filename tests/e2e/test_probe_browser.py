"""The probe page in a real headless Chromium against real servers.

Debian's ``chromium`` (installed by ``make browser``) driven by Playwright with
``executable_path``; Playwright's own browser downloads are never used. Tests
skip only when no Chromium exists and ``REQUIRE_BROWSER`` is unset; CI sets it,
so a missing browser there is a failure.

What is asserted was measured first (Chromium 156, lab-threaded and flask-dev):
ten unique URLs go out six at a time (the HTTP/1.1 per-host limit), and six
identical URLs go out one at a time (the HTTP cache lock) unless the fetch
bypasses the cache. Every test also recomputes the page's headline figures
from the raw per-request data it exposes, so the page is checked for telling
the truth, not only for the numbers it prints. A full-page screenshot of each
run lands in ``test-artifacts/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadtest.measure.evidence import max_in_flight
from tests.browsing import CHROMIUM_HOST_CAP, screenshot
from tests.support import free_port, lab_server, running

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def lab_threaded() -> Iterator[int]:
    port = free_port()
    with lab_server("threaded", port):
        yield port


@pytest.fixture(scope="module")
def flask_dev() -> Iterator[int]:
    port = free_port()
    with running(["-m", "app", "--port", str(port)], port):
        yield port


class ProbePage:
    """One browser tab on /probe that records every console error and uncaught exception."""

    def __init__(self, browser, port: int) -> None:
        self.context = browser.new_context(viewport={"width": 1060, "height": 900})
        self.page = self.context.new_page()
        self.base = f"http://127.0.0.1:{port}"
        self.errors: list[str] = []
        self.sleeps: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        # The reason behind a "Failed to fetch" (net::ERR_...), which the page itself cannot see.
        self.page.on("requestfailed", lambda req: self.errors.append(f"{req.url}: {req.failure}"))

    def wait_for_result(self, timeout_s: float) -> dict:
        self.page.wait_for_function(
            "window.probeResult && ['done', 'error'].includes(window.probeResult.status)",
            timeout=timeout_s * 1000,
        )
        result = self.page.evaluate("window.probeResult")
        assert result["status"] == "done", result
        return result

    def run(self, n: int, s: float, urls: str, cache: str = "default") -> dict:
        self.page.goto(f"{self.base}/probe?n={n}&s={s}&urls={urls}&cache={cache}&autorun=1")
        return self.wait_for_result(timeout_s=n * s + 30)

    def bars(self) -> int:
        return self.page.locator("#chart g.bar").count()

    def screenshot(self, name: str) -> Path:
        return screenshot(self.page, name)

    def network_changed(self) -> bool:
        return any(marker in error for error in self.errors for marker in NETWORK_CHANGE_ERRORS)

    def close(self) -> None:
        self.context.close()


# Chromium aborts every request in flight with ERR_NETWORK_CHANGED when the host's network interfaces
# change, and the sockets it had then fail with ERR_SOCKET_NOT_CONNECTED. On this shared machine that
# happens whenever another job's Docker creates or removes a container network. It says nothing about
# the page or the server, so such a run is repeated on a fresh tab; any other failure counts.
NETWORK_CHANGE_ERRORS = ("ERR_NETWORK_CHANGED", "ERR_SOCKET_NOT_CONNECTED")
ATTEMPTS = 3


@pytest.fixture
def probe(browser) -> Iterator[Callable[[int, Callable[[ProbePage], dict]], tuple[ProbePage, dict]]]:
    """``probe(port, action)`` runs ``action`` on a fresh /probe tab and returns the tab and its result.

    The tab kept for the test must end with no console errors at all.
    """
    pages: list[ProbePage] = []

    def run(port: int, action: Callable[[ProbePage], dict]) -> tuple[ProbePage, dict]:
        for attempt in range(1, ATTEMPTS + 1):
            page = ProbePage(browser, port)
            pages.append(page)
            try:
                result = action(page)
            except Exception:
                if attempt < ATTEMPTS and page.network_changed():
                    continue
                raise
            if attempt < ATTEMPTS and page.network_changed():
                print(f"attempt {attempt}: the host network changed during the run, repeating: {page.errors}")
                continue
            return page, result
        raise AssertionError("unreachable")

    yield run
    try:
        kept = pages[-1] if pages else None
        if kept is not None:
            assert kept.errors == [], f"console errors on /probe: {kept.errors}"
    finally:
        for page in pages:
            page.close()


def check_truthful(page: ProbePage, result: dict, n: int) -> tuple[int, int]:
    """The page's headline numbers must follow from its own per-request data."""
    reqs = result["requests"]
    assert len(reqs) == n and result["n"] == n
    assert result["errors"] == [], (result["errors"], page.errors)
    assert result["okCount"] == n
    assert sorted(r["i"] for r in reqs) == list(range(n))
    for r in reqs:
        assert r["status"] == 200
        # Browser-side causality: sent, on the wire, received (a few ms of slack for timer rounding).
        assert r["sent"] <= r["wireStart"] <= r["wireEnd"] <= r["received"] + 5, r
        assert r["pid"].isdigit() and r["thread"]
    server = max_in_flight([(r["serverStart"], r["serverEnd"]) for r in reqs])
    wire = max_in_flight([(r["wireStart"], r["wireEnd"]) for r in reqs])
    assert result["serverMaxInFlight"] == server
    assert result["browserMaxOnWire"] == wire
    assert result["clocksConsistent"], result["clockOffsetMs"]
    assert result["protocols"] == ["http/1.1"]
    elapsed = max(r["received"] for r in reqs) - min(r["sent"] for r in reqs)
    assert result["elapsedMs"] == pytest.approx(elapsed)
    return server, wire


def test_unique_urls_meet_the_browsers_connection_cap(probe, lab_threaded):
    page, result = probe(lab_threaded, lambda p: p.run(n=10, s=1, urls="unique"))
    server, wire = check_truthful(page, result, 10)
    path = page.screenshot("probe-lab-threaded-unique")

    assert page.bars() == 10
    assert result["models"] == ["lab-threaded"]
    # The browser cap: never more than six on the wire, yet several at once.
    assert 2 <= wire <= CHROMIUM_HOST_CAP, result
    # A thread per connection: the server ran whatever reached it.
    assert 2 <= server <= wire
    # Ten 1 s requests through at most six connections need at least two rounds...
    assert result["elapsedMs"] >= 1900
    assert result["elapsedMs"] < 8000  # ...but nowhere near ten: they were not serialised
    # ...and the second round waited inside the browser, not in the server.
    assert result["browserMaxWaitMs"] >= 800
    assert "capped this run" in result["verdict"]
    assert "capped this run" in page.page.inner_text("#verdict")
    print(f"unique URLs: browser max {wire} on the wire, server max {server}; screenshot {path}")


def test_same_url_waits_for_the_cache_lock(probe, lab_threaded):
    """Six identical URLs: below the connection cap, so any queuing is the HTTP cache's doing."""
    page, result = probe(lab_threaded, lambda p: p.run(n=6, s=1, urls="same"))
    server, wire = check_truthful(page, result, 6)
    path = page.screenshot("probe-lab-threaded-same-url")

    assert page.bars() == 6
    assert len({r["url"] for r in result["requests"]}) == 1
    # Measured: Chromium sends identical GETs one after another, and the server saw them so.
    assert wire == 1, result
    assert server == 1
    assert result["elapsedMs"] >= 5 * 1000
    assert result.get("serialisedByBrowser") is True
    assert "cache lock" in page.page.inner_text("#verdict")
    print(f"same URL: browser max {wire} on the wire, server max {server}; screenshot {path}")


def test_same_url_without_the_http_cache_runs_in_parallel(probe, lab_threaded):
    """The control experiment: the same six identical URLs with ``cache: "no-store"`` go out at once,
    which pins the serialisation above on the cache rather than on the connection limit."""
    page, result = probe(lab_threaded, lambda p: p.run(n=6, s=1, urls="same", cache="no-store"))
    server, wire = check_truthful(page, result, 6)
    page.screenshot("probe-lab-threaded-same-url-no-store")

    assert wire >= 3, result
    assert server >= 3
    assert result["elapsedMs"] < 4000
    assert not result.get("serialisedByBrowser")
    assert "cache lock" not in result["verdict"]


def test_single_threaded_server_is_the_narrower_limit(probe):
    """The ten-tabs mistake from the other side: the browser puts several requests on the wire, and the
    page shows that the one-at-a-time server, not the browser, kept them waiting."""
    port = free_port()
    with lab_server("single", port):
        page, result = probe(port, lambda p: p.run(n=6, s=0.5, urls="unique"))
    server, wire = check_truthful(page, result, 6)
    page.screenshot("probe-lab-single-unique")

    assert result["models"] == ["lab-single"]
    assert server == 1
    assert wire >= 2, result
    assert result["elapsedMs"] >= 6 * 500 * 0.95
    assert "the server (lab-single) was the narrower limit" in result["verdict"]


def test_form_run_on_flask_dev_server(probe, flask_dev):
    """Driven through the form, as a person would, against Flask's own threaded dev server."""

    def use_the_form(p: ProbePage) -> dict:
        p.page.goto(f"{p.base}/probe")
        p.page.fill("input[name=n]", "10")
        p.page.fill("input[name=s]", "1")
        p.page.check("input[name=urls][value=unique]")
        p.page.click("#run")
        return p.wait_for_result(timeout_s=30)

    page, result = probe(flask_dev, use_the_form)
    server, wire = check_truthful(page, result, 10)
    page.screenshot("probe-flask-dev-unique")

    assert page.bars() == 10
    assert result["models"] == ["flask-dev"]
    assert 2 <= wire <= CHROMIUM_HOST_CAP
    assert 2 <= server <= wire
    assert result["elapsedMs"] >= 1900
    # The run is linkable: the form wrote its settings into the address.
    assert "n=10" in page.page.url and "urls=unique" in page.page.url


def test_bad_settings_get_a_clear_answer_and_send_nothing(probe, lab_threaded):
    def ask_for_too_many(p: ProbePage) -> dict:
        p.page.on("request", lambda req: "/sleep" in req.url and p.sleeps.append(req.url))
        p.page.goto(f"{p.base}/probe?n=1000&s=1&autorun=1")
        p.page.wait_for_function("window.probeResult.status === 'error'", timeout=10_000)
        return p.page.evaluate("window.probeResult")

    page, result = probe(lab_threaded, ask_for_too_many)
    assert result["error"] == "N must be between 1 and 60"
    assert page.page.inner_text("#status") == "N must be between 1 and 60"
    assert page.sleeps == []
