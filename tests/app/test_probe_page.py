"""``GET /probe`` as plain HTTP: the page, its assets, and what it relies on from the app.

The browser behaviour itself is tested in a real Chromium (test_probe_browser.py);
these checks need no browser and run everywhere.
"""

from __future__ import annotations

import re

from loadtest.inserver.headers import IDENTITY_HEADERS


def test_probe_page_is_served_with_its_form(client):
    r = client.get("/probe")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    for name in ('name="n"', 'name="s"', 'name="urls"', 'name="cache"', 'id="chart"'):
        assert name in html, name
    # The limits shown in the form are the app's own bounds, not a second copy of them.
    assert 'max="30.0"' in html


def test_probe_needs_nothing_from_outside(client):
    """No CDN, no build step: every script, stylesheet and image comes from the app itself."""
    html = client.get("/probe").get_data(as_text=True)
    resources = re.findall(r'<(?:script|link|img)\b[^>]*?(?:src|href)="([^"]+)"', html)
    assert resources, "expected the page's own script and stylesheet"
    for url in resources:
        assert url.startswith(("/", "data:")), f"external resource {url!r} in /probe"
        if url.startswith("/"):
            assert client.get(url).status_code == 200, url


def test_probe_assets_are_what_the_page_expects(client):
    js = client.get("/static/probe.js")
    assert js.status_code == 200
    assert "javascript" in js.mimetype
    source = js.get_data(as_text=True)
    # The page reads exactly the identity headers the app sends.
    for header in IDENTITY_HEADERS:
        assert f'"{header}"' in source, header
    assert "window.probeResult" in source
    assert client.get("/static/probe.css").status_code == 200


def test_probe_page_carries_the_identity_headers_too(client):
    r = client.get("/probe")
    for name in IDENTITY_HEADERS:
        assert name in r.headers, name


def test_sleep_responses_are_never_fresh_in_a_cache(client):
    """The probe's same-URL run shows identical GETs queuing behind Chromium's cache lock and each
    reaching the server. A freshness lifetime on /sleep (max-age, Expires, or Last-Modified, which
    allows heuristic freshness) would turn that into cache hits and change what the page shows."""
    r = client.get("/sleep?s=0")
    max_age = re.search(r"max-age=(\d+)", r.headers.get("Cache-Control", ""))
    assert max_age is None or int(max_age.group(1)) == 0
    assert "Expires" not in r.headers
    assert "Last-Modified" not in r.headers
