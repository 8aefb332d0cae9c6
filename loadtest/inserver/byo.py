"""Serve someone else's WSGI app with wsgi-lab's identity headers added.

``python -m loadtest.compare --app mymodule:app`` points every target at
``<package>.inserver.byo:app`` with ``LAB_BYO_APP=mymodule:app`` (any spec gunicorn takes:
``loadtest/registry/appspec.py``; a factory is called here). In a team's environment the
package is a uniquely named copy of ``loadtest`` (``loadtest/run/shim.py``), so their own
``app`` and ``server`` modules are the ones that import.  The wrapper adds the
same headers our demo app sets (``loadtest/inserver/identity.py``: model, pid, thread,
start, end, the request's CPU time and its lane), so the timelines, in-flight
counts and CPU figures work for any app.  ``X-Request-End`` is taken
when the app calls ``start_response`` -- for ordinary apps that is when the
work is done; a streaming app keeps working after it.

The wrapper also answers ``GET /_lab/usage`` itself (``loadtest/inserver/usage.py``):
the server's CPU and memory, measured from inside, wherever it runs.

The app is imported when this module is, so a bad spec stops the
server at startup and the comparison reports it as a target that failed to
start.
"""

from __future__ import annotations

import json
import os
import time

from ..registry.appspec import DEMO, AppSpec
from . import identity, usage

APP_ENV = "LAB_BYO_APP"


def load_app(spec: str):
    """The WSGI callable ``spec`` names (AppSpecError, one line, when it cannot be had)."""
    return AppSpec.parse(spec).load()


def with_identity(inner):
    model = os.environ.get("LAB_SERVER_MODEL", "byo")

    def identified(environ, start_response):
        started = time.time()
        clock = identity.CpuClock()

        def start(status, headers, exc_info=None):
            headers = [*headers, *identity.response_headers(model, os.getpid(), started, clock)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        if environ.get("PATH_INFO") == usage.USAGE_PATH and environ.get("REQUEST_METHOD") == "GET":
            body = json.dumps(usage.snapshot()).encode()
            start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return inner(environ, start)

    return identified


app = with_identity(load_app(os.environ.get(APP_ENV, DEMO)))
