"""``GET /probe``: what a *browser* does with N simultaneous requests, beside what the server did.

The classic mistake is opening ten tabs against a server and reading the result as
the server's concurrency.  A browser is not a neutral client: Chromium keeps at
most six HTTP/1.1 connections per host and lets only one request per URL
through its HTTP cache at a time.  This page fires N ``fetch()`` calls at
``/sleep`` at once and draws, for each, when the browser sent it, when it went
on the wire, and when the app started and ended it (the identity headers), so
the two limits can be told apart on any server model.

Everything the page needs is already in the app: same-origin ``fetch()`` sees
the ``X-*`` identity headers and the detailed Resource Timing fields without
``Access-Control-Expose-Headers`` or ``Timing-Allow-Origin``, and ``/sleep``
keeps its ordinary headers on purpose, because the cache-lock effect on an
ordinary endpoint is what the page is there to show.

The page is plain HTML + JS + SVG (``templates/probe.html``,
``static/probe.js``, ``static/probe.css``): no CDN, no build step, so it
works offline and in the test's headless Chromium.

A blueprint that knows nothing of the app object: :mod:`app.views` registers it,
and the sleep bound both offer comes from :mod:`app.limits`.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from app.limits import MAX_SLEEP_S

blueprint = Blueprint("probe", __name__)

# Defaults that show both browser limits at once on any server model: more
# requests than Chromium's six connections per host, each long enough to see.
DEFAULT_N = 10
DEFAULT_SECONDS = 1.0
MAX_N = 60  # enough to show queueing; bounded so a typo cannot flood the server


@blueprint.get("/probe")
def probe_page() -> str:
    return render_template(
        "probe.html",
        default_n=DEFAULT_N,
        default_seconds=DEFAULT_SECONDS,
        max_n=MAX_N,
        max_seconds=MAX_SLEEP_S,
    )
