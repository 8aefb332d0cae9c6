"""The bring-your-own wrapper sends the demo app's identity headers, CPU time and lane included."""

from __future__ import annotations

import time

from loadtest.inserver import byo
from loadtest.inserver.headers import HEADER_CPU, HEADER_LANE_KIND, IDENTITY_HEADERS, LANE_THREAD


def burner(environ, start_response):
    """Someone else's app: 30 ms of CPU, then a plain answer."""
    started = time.thread_time()
    while time.thread_time() - started < 0.030:
        pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]


def call(app, path: str = "/") -> dict[str, str]:
    seen: dict[str, str] = {}

    def start_response(status, headers, exc_info=None):
        seen.update(headers)
        seen["status"] = status

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    seen["body"] = body.decode()
    return seen


def test_wrapped_app_answers_with_every_identity_header():
    headers = call(byo.with_identity(burner))
    assert headers["status"] == "200 OK" and headers["body"] == "done"
    assert all(name in headers for name in IDENTITY_HEADERS)
    assert 29.0 <= float(headers[HEADER_CPU]) < 300.0
    assert headers[HEADER_LANE_KIND] == LANE_THREAD


def test_the_usage_endpoint_names_the_interpreter():
    headers = call(byo.with_identity(burner), "/_lab/usage")
    assert '"interpreter"' in headers["body"] and '"gil_enabled"' in headers["body"]
