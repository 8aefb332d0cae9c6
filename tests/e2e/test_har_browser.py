"""A HAR recorded by a real Chromium from the demo app, read as tune's workload.

Debian's ``chromium`` driven by Playwright (``record_har_path``), as the other browser tests
(skip only without Chromium and ``REQUIRE_BROWSER`` unset). The page's own requests (the
document, its script and styles, the probe's fetches) are what a team's recording holds;
a 404 in it becomes that request's expected answer, and the session cookie the browser sent
is dropped unless ``keep_auth``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.tune.traffic import har
from tests.support import free_port, lab_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def record(browser, port: int, path: Path) -> Path:
    """Visit the demo app's pages (and one missing) in a context that records a HAR to ``path``."""
    context = browser.new_context(record_har_path=str(path))
    context.add_cookies([{"name": "session", "value": "secret", "url": f"http://127.0.0.1:{port}/"}])
    page = context.new_page()
    for target in ("/", "/probe", "/whoami", "/missing", "/sleep?s=0.01"):
        page.goto(f"http://127.0.0.1:{port}{target}")
    page.evaluate("fetch('/echo', {method: 'POST', body: 'hello', headers: {'Authorization': 'Bearer t'}})")
    page.wait_for_timeout(500)
    context.close()  # writes the HAR
    return path


@pytest.fixture(scope="module")
def demo() -> Iterator[int]:
    port = free_port()
    with lab_server("threaded", port):
        yield port


def test_a_chromium_har_is_a_workload(browser, demo, tmp_path):
    path = record(browser, demo, tmp_path / "demo.har")
    work, traffic = har.read(path)
    names = {r.name: r for r in work.requests}
    assert {"/", "/probe", "/whoami", "/missing", "/sleep?s=0.01", "POST /echo"} <= set(names)
    assert names["/missing"].expect == (404,)
    assert names["POST /echo"].body == "hello"
    sent = [k.lower() for r in work.requests for k, _ in r.headers]
    assert "cookie" not in sent and "authorization" not in sent and "user-agent" in sent
    assert traffic.format == "har" and traffic.parsed == sum(r.weight for r in work.requests)
    kept, _ = har.read(path, keep_auth=True)
    echo = next(r for r in kept.requests if r.name == "POST /echo")
    assert ("authorization", "Bearer t") in {(k.lower(), v) for k, v in echo.headers}
    assert any(k.lower() == "cookie" and "secret" in v for r in kept.requests for k, v in r.headers)
