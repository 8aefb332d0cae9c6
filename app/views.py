"""Routes of the demo app: hello, I/O-bound, CPU-bound, body, streaming.

The endpoints are deliberately tiny so that what a load test measures is
the *server model* (how many requests can be in flight, where they run),
not the application.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from flask import Flask, Response, g, jsonify, request

from app import probe
from app.limits import MAX_CHUNK_DELAY_S, MAX_CHUNKS, MAX_CPU_MS, MAX_SLEEP_S
from loadtest.inserver import identity, usage

app = Flask(__name__)
app.register_blueprint(probe.blueprint)  # GET /probe, see app/probe.py
stats = identity.WorkerStats()


class BadParameter(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def number_arg(name: str, default: float, low: float, high: float) -> float:
    """Read a numeric query parameter or raise :class:`BadParameter`."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(name, f"{name} must be a number, got {raw!r}") from None
    if not (low <= value <= high):  # also rejects nan
        raise BadParameter(name, f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


@app.errorhandler(BadParameter)
def bad_parameter(exc: BadParameter):
    return jsonify(error=str(exc), parameter=exc.name), 400


@app.before_request
def mark_start() -> None:
    g.request_start = identity.now()
    g.request_cpu = identity.CpuClock()
    stats.count_request()


@app.after_request
def add_identity(response: Response) -> Response:
    start = g.get("request_start") or identity.now()
    clock = g.get("request_cpu") or identity.CpuClock()
    model = identity.server_model(request.environ)
    for name, value in identity.response_headers(model, stats.pid, start, clock):
        response.headers[name] = value
    return response


@app.get("/")
def hello() -> str:
    return "Hello Flask"


@app.get("/health")
def health() -> str:
    return "ok"


@app.get(usage.USAGE_PATH)
def lab_usage() -> Response:
    """CPU seconds and memory of the server's process tree, so a comparison measures any host."""
    return jsonify(usage.snapshot())


@app.get("/sleep")
def sleep() -> Response:
    """I/O-bound work: the worker waits but needs no CPU (and no GIL)."""
    seconds = number_arg("s", 0.5, 0.0, MAX_SLEEP_S)
    time.sleep(seconds)
    return jsonify(slept=seconds)


@app.get("/cpu")
def cpu() -> Response:
    """CPU-bound work: a pure-Python loop that holds the GIL while it runs.

    It stops when *this thread* has used ``ms`` of CPU time, so under
    contention a request takes longer in wall time but does the same work —
    which is exactly what the threaded vs. forking comparison should show.
    """
    ms = number_arg("ms", 20.0, 0.0, MAX_CPU_MS)
    budget = ms / 1000.0
    started = time.thread_time()
    spins = 0
    while time.thread_time() - started < budget:
        for _ in range(1000):
            spins += 1
    return jsonify(ms=ms, spins=spins)


@app.get("/whoami")
def whoami() -> Response:
    environ = request.environ
    thread = threading.current_thread()
    kind, lane_id = identity.lane()
    return jsonify(
        model=identity.server_model(environ),
        pid=stats.pid,
        ppid=os.getppid(),
        thread_name=thread.name,
        thread_id=thread.ident,
        lane_kind=kind,
        lane_id=lane_id,
        interpreter=usage.interpreter(),
        requests_served=stats.requests,
        process_start_time=stats.process_start_time(),
        multithread=bool(environ.get("wsgi.multithread")),
        multiprocess=bool(environ.get("wsgi.multiprocess")),
        server_software=environ.get("SERVER_SOFTWARE", ""),
    )


@app.post("/echo")
def echo() -> Response:
    """Hash the request body as it streams in (Content-Length or chunked)."""
    digest = hashlib.sha256()
    size = 0
    stream = request.stream
    while chunk := stream.read(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return jsonify(bytes=size, sha256=digest.hexdigest())


@app.get("/stream")
def stream() -> Response:
    """A generator response: no Content-Length, so HTTP/1.1 servers chunk it."""
    chunks = int(number_arg("chunks", 5, 1, MAX_CHUNKS))
    delay = number_arg("delay", 0.1, 0.0, MAX_CHUNK_DELAY_S)

    def generate():
        for i in range(chunks):
            if i and delay:
                time.sleep(delay)
            yield f"chunk {i}\n"

    return Response(generate(), mimetype="text/plain")
