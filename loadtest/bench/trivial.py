"""The trivial server of ``make generator-ceiling``: granian's RSGI interface, one fixed answer.

granian parses HTTP in Rust; this app only counts the request and hands back a fixed
body with the identity headers our app sends (fixed values), so the generator's
recorder reads as many headers as it does against a real target.  ``GET /_count`` says
how many requests it answered, which is how the bench counts the generator's rate
without trusting the generator.
"""

from __future__ import annotations

from loadtest.inserver.headers import (
    HEADER_CPU,
    HEADER_END,
    HEADER_LANE_ID,
    HEADER_LANE_KIND,
    HEADER_MODEL,
    HEADER_PID,
    HEADER_START,
    HEADER_THREAD,
)

COUNT_PATH = "/_count"
HEADERS = [
    ("content-type", "text/plain"),
    (HEADER_MODEL, "trivial"),
    (HEADER_PID, "1"),
    (HEADER_THREAD, "main"),
    (HEADER_START, "1.000000"),
    (HEADER_END, "1.000010"),
    (HEADER_CPU, "0.010"),
    (HEADER_LANE_KIND, "thread"),
    (HEADER_LANE_ID, "1"),
]
answered = [0]


async def app(scope, protocol) -> None:
    if scope.path == COUNT_PATH:
        protocol.response_str(200, [("content-type", "text/plain")], str(answered[0]))
        return
    answered[0] += 1
    protocol.response_bytes(200, HEADERS, b"hello")
