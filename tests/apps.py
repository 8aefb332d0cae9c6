"""Small WSGI apps that the server tests run (``tests.apps:validated``); no tests of its own.

Plain WSGI, no framework, so each route exercises one PEP 3333 rule.  The
server runs them wrapped in ``wsgiref.validate.validator`` with its warnings
turned into errors: any environ or protocol slip by the server becomes a
500 that the tests see.

Each response iterable's ``close()`` appends one byte to the file named by the
``CLOSE_LOG_ENV`` variable (when set), so that the count holds across the
processes of the forking and prefork modes; ``/closed`` answers that count.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

CLOSE_LOG_ENV = "TESTS_APPS_CLOSE_LOG"


class Body:
    """A response iterable that counts its close() calls (in the ``CLOSE_LOG_ENV`` file)."""

    def __init__(self, chunks, fail_after: int | None = None) -> None:
        self.chunks = list(chunks)
        self.fail_after = fail_after

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("deliberate failure after the response started")
            yield chunk

    def close(self) -> None:
        if path := os.environ.get(CLOSE_LOG_ENV):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # one write: atomic across processes
            try:
                os.write(fd, b"c")
            finally:
                os.close(fd)


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Body([body])


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    text = [("Content-Type", "text/plain")]
    if path == "/health":
        start_response("200 OK", text)
        return Body([b"ok"])
    if path.startswith("/env") or path == "":  # "" is OPTIONS *
        data = {k: v for k, v in environ.items() if "." not in k}
        data.update(
            {k: environ[k] for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.input_terminated")}
        )
        data["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
        data["types"] = sorted({type(v).__name__ for k, v in environ.items() if "." not in k})
        return _json(start_response, data)
    if path == "/echo":  # read the body in pieces, as a careful app does
        stream, digest, size, chunk = environ["wsgi.input"], hashlib.sha256(), 0, int(query.get("chunk", 7))
        while data := stream.read(chunk):
            digest.update(data)
            size += len(data)
        return _json(start_response, {"bytes": size, "sha256": digest.hexdigest()})
    if path == "/echo-catching":  # an app (like Flask) that turns a wsgi.input error into its own 500
        stream, size = environ["wsgi.input"], 0
        try:
            while data := stream.read(65536):  # the validator allows read() only with a size
                size += len(data)
        except Exception:
            start_response("500 Internal Server Error", text)
            return Body([b"the app caught the error"])
        return _json(start_response, {"bytes": size})
    if path == "/lines":  # readline() and iteration
        stream = environ["wsgi.input"]
        first = stream.readline()
        rest = list(stream)
        return _json(start_response, {"first": first.decode(), "rest": [r.decode() for r in rest]})
    if path == "/fixed":
        return _json(start_response, {"fixed": True})
    if path == "/noread":
        start_response("200 OK", text)
        return Body([b"did not read the body"])
    if path == "/stream":
        start_response("200 OK", text)
        return Body([f"part {i}\n".encode() for i in range(int(query.get("n", 3)))])
    if path == "/empty":
        start_response("200 OK", text)
        return Body([])
    if path == "/nocontent":
        start_response("204 No Content", [])
        return Body([])
    if path == "/write":
        write = start_response("200 OK", text)
        write(b"written ")
        write(b"then ")
        return Body([b"returned"])
    if path == "/sleep":
        time.sleep(float(query.get("s", 0.5)))
        return _json(start_response, {"pid": os.getpid(), "thread": threading.current_thread().name})
    if path == "/big":  # for the client that goes away mid-response
        size = int(query.get("mb", 20))
        start_response("200 OK", text)
        return Body([b"x" * 65536] * (size * 16))
    if path == "/error-before":
        raise RuntimeError("deliberate failure before the response started")
    if path == "/error-after":
        start_response("200 OK", text)
        return Body([b"first part\n", b"never sent"], fail_after=1)
    if path == "/error-after-start":  # start_response called, nothing sent yet: still a clean 500
        start_response("200 OK", text)
        raise RuntimeError("deliberate failure after start_response")
    if path == "/error-in-iterator":  # the iterable fails before its first block
        start_response("200 OK", text)
        return Body([b"never sent"], fail_after=0)
    if path == "/error-in-close":  # the response is complete; close() fails afterwards
        start_response("200 OK", text)
        return _FailingClose([b"complete\n"])
    if path == "/exc-info":  # an error page replaces headers that were set but not sent
        start_response("200 OK", [*text, ("X-Replaced", "no")])
        try:
            raise ValueError("something went wrong")
        except ValueError:
            start_response("503 Service Unavailable", [*text, ("X-Replaced", "yes")], sys.exc_info())
        return Body([b"error page"])
    if path == "/exc-info-late":  # too late: the head is out, so exc_info must re-raise
        start_response("200 OK", text)
        return _LateError(start_response)
    if path == "/closed":
        log = os.environ.get(CLOSE_LOG_ENV)
        return _json(start_response, {"closed": os.path.getsize(log) if log and os.path.exists(log) else 0})
    start_response("404 Not Found", text)
    return Body([b"not found"])


class _FailingClose(Body):
    def close(self) -> None:
        super().close()
        raise RuntimeError("deliberate failure in close()")


class _LateError(Body):
    def __init__(self, start_response) -> None:
        super().__init__([])
        self.start_response = start_response

    def __iter__(self):
        yield b"started\n"
        try:
            raise ValueError("late")
        except ValueError:
            self.start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"not reached"


validated = validator(app)


def sink(environ, start_response):
    """Reads the whole body and answers 200, whatever the request: any other status is the server's.

    The fuzz tests run it, so that a 5xx can only come from the server itself.
    """
    size = len(environ["wsgi.input"].read())
    body = b"ok %d\n" % size
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
