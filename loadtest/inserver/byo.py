"""Serve someone else's WSGI app with wsgi-lab's identity headers added.

``python -m loadtest.compare --app mymodule:app`` points every target at
``loadtest.inserver.byo:app`` with ``LAB_BYO_APP=mymodule:app``.  The wrapper adds the
same headers our demo app sets (model, pid, thread, start, end), so the
timelines and in-flight counts work for any app.  ``X-Request-End`` is taken
when the app calls ``start_response`` -- for ordinary apps that is when the
work is done; a streaming app keeps working after it.

The wrapper also answers ``GET /_lab/usage`` itself (``loadtest/inserver/usage.py``):
the server's CPU and memory, measured from inside, wherever it runs.

The app is imported when this module is, so a bad ``MODULE:APP`` stops the
server at startup and the comparison reports it as a target that failed to
start.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time

from loadtest.inserver import usage
from loadtest.inserver.headers import HEADER_END, HEADER_MODEL, HEADER_PID, HEADER_START, HEADER_THREAD


def load_app(spec: str):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"app must be MODULE:APP, got {spec!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r}") from None


def with_identity(inner):
    model = os.environ.get("LAB_SERVER_MODEL", "byo")

    def identified(environ, start_response):
        started = time.time()

        def start(status, headers, exc_info=None):
            headers = [
                *headers,
                (HEADER_MODEL, model),
                (HEADER_PID, str(os.getpid())),
                (HEADER_THREAD, threading.current_thread().name),
                (HEADER_START, f"{started:.6f}"),
                (HEADER_END, f"{time.time():.6f}"),
            ]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        if environ.get("PATH_INFO") == usage.USAGE_PATH and environ.get("REQUEST_METHOD") == "GET":
            body = json.dumps(usage.snapshot()).encode()
            start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return inner(environ, start)

    return identified


app = with_identity(load_app(os.environ.get("LAB_BYO_APP", "app:app")))
