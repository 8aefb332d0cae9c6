"""Fixtures shared by several test modules (pytest finds them here; nothing imports this module).

- ``client``: Flask's test client for the demo app, in process.
- ``mode_server``: one server per mode (single, threaded, forking, prefork, event)
  running ``tests.apps:validated``, started once for the whole session and shared
  by the HTTP behaviour and fault tests, so that covering every mode costs five
  server starts, not one per test.
- ``browser``: a headless Debian Chromium driven by Playwright, per module; skips without
  one unless ``REQUIRE_BROWSER`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from app import app
from loadtest.answers.probe import CHROMIUM, CHROMIUM_ARGS
from server.config import MODES
from tests.browsing import find_chromium
from tests.support import ModeServer, serve_test_apps


@pytest.fixture
def client():
    return app.test_client()


@pytest.fixture(scope="session", params=MODES)
def mode_server(request, tmp_path_factory) -> Iterator[ModeServer]:
    """The validated test apps served in each mode, one server per mode for the whole session."""
    with serve_test_apps(request.param, tmp_path_factory.mktemp(f"server-{request.param}")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator:
    path = find_chromium()
    if path is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"REQUIRE_BROWSER is set but there is no Chromium at {CHROMIUM}: run `make browser`")
        pytest.skip(f"no Chromium at {CHROMIUM} (run `make browser`; REQUIRE_BROWSER=1 makes this a failure)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
