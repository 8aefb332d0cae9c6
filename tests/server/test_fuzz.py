"""Property-based fuzzing of request parsing: whatever bytes arrive, the server answers or closes.

Two levels, both fed arbitrary bytes and valid requests mutated (bytes flipped,
inserted, deleted) and split at random points:

- in-process against a :mod:`server.http` core (thousands of examples cost seconds): the
  core never raises anything but :class:`HTTPError` / :class:`ClientGone`, never
  waits for more input after the client closed, and never answers a status the
  server's own code should not produce (a 5xx other than 501 and 505);
- against a real server process (the blocking driver and the event loop's),
  a fresh connection per example, running
  ``tests.apps:sink`` (which always answers 200): every example gets
  a response or a close within the timeout, never a 5xx of the server's own, no
  traceback in its log, and a normal request is served afterwards.

Each level runs with both cores (the h11 reference and ours over httptools).
``LAB_FUZZ_PROFILE=ci`` (the default: a few hundred examples, seconds) or
``fuzz`` (``make fuzz``: many more) selects the hypothesis profile.
"""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import config as config_module
from server.config import Config
from server.http import grammar, policy
from tests import bytes_in
from tests.support import free_port, lab_server

# Examples per test in each profile: (in-process, over a socket).
EXAMPLES = {"ci": (400, 120), "fuzz": (20_000, 1_500)}
PROFILE = os.environ.get("LAB_FUZZ_PROFILE", "ci")
for _name, (_core, _socket) in EXAMPLES.items():
    common = {"deadline": None, "database": None, "print_blob": True}
    settings.register_profile(f"{_name}-core", max_examples=_core, **common)
    settings.register_profile(
        f"{_name}-socket", max_examples=_socket, suppress_health_check=list(HealthCheck), **common
    )
CORE = settings.get_profile(f"{PROFILE}-core")
SOCKET = settings.get_profile(f"{PROFILE}-socket")

# A status the protocol itself calls for; anything else in 5xx would be the server failing.
PROTOCOL_5XX = {501, 505}
ANSWER_WITHIN = 5.0  # seconds for the server to answer or close once the client has sent all
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")
PARSERS = [
    "h11",
    pytest.param("httptools", marks=pytest.mark.skipif(not config_module.HTTPTOOLS, reason="no httptools")),
]

# --- what is sent ------------------------------------------------------------------------------

METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"PATCH"]
TARGETS = [b"/", b"/echo", b"/a%20b?c=d", b"http://h:1/x?y", b"http://u:p@h/x", b"*", b"/f#frag"]
FIELDS = [b"Accept", b"Cookie", b"Content-Type", b"Expect", b"Connection", b"X-Custom", b"Trailer"]
VALUES = [b"*/*", b"a=1", b"text/plain", b"100-continue", b"close", b"keep-alive", b"v"]
ATOMS = [
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b",",
    b";",
    b"GET",
    b"POST",
    b" / ",
    b"HTTP/1.1",
    b"HTTP/1.0",
]
ATOMS += [
    b"Host: h",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"0",
    b"5",
    b"ffff",
    b"\x00",
    b"\x7f",
]


def chunk(body: bytes, sizes: list[int]) -> bytes:
    out, rest = b"", body
    for size in sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
    if rest:
        out += b"%x\r\n%s\r\n" % (len(rest), rest)
    return out + b"0\r\n\r\n"


@st.composite
def valid_requests(draw) -> bytes:
    method, target = draw(st.sampled_from(METHODS)), draw(st.sampled_from(TARGETS))
    if target == b"*":
        method = b"OPTIONS"
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    fields = [
        (n, v)
        for n, v in draw(st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(VALUES)), max_size=4))
    ]
    fields = list({n: (n, v) for n, v in fields}.values())  # singletons stay single
    if version == b"1.1":
        fields.insert(0, (b"Host", b"lab.test"))
    body = draw(st.binary(max_size=80))
    framing = draw(
        st.sampled_from(["length", "chunked", "none"] if version == b"1.1" else ["length", "none"])
    )
    if framing == "length":
        fields.append((b"Content-Length", str(len(body)).encode()))
    elif framing == "chunked":
        fields.append((b"Transfer-Encoding", b"chunked"))
        body = chunk(body, draw(st.lists(st.integers(1, 30), max_size=4)))
    else:
        body = b""
    head = b"%s %s HTTP/%s\r\n" % (method, target, version)
    return head + b"".join(b"%s: %s\r\n" % f for f in fields) + b"\r\n" + body


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(b"".join(draw(st.lists(valid_requests(), min_size=1, max_size=3))))
    for op, where, byte in draw(
        st.lists(st.tuples(st.sampled_from("fid"), st.integers(0), st.integers(0, 255)), max_size=4)
    ):
        i = where % (len(data) + 1)
        if op == "i":
            data[i:i] = bytes([byte])
        elif data and i < len(data):
            if op == "f":
                data[i] ^= 1 << (byte % 8)
            else:
                del data[i]
    return bytes(data)


request_bytes = st.one_of(
    valid_requests(),
    mutated(),
    mutated(),
    st.lists(st.sampled_from(ATOMS), max_size=30).map(b"".join),
    st.binary(max_size=300),
)


@st.composite
def split(draw, data: st.SearchStrategy[bytes]) -> list[bytes]:
    """The bytes, cut into the pieces in which they arrive."""
    raw = draw(data)
    cuts = sorted(draw(st.lists(st.integers(0, max(len(raw), 1)), max_size=6)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if b > a]


# --- in-process ---------------------------------------------------------------------------------


def serve_in_process(pieces: list[bytes], parser: str) -> list[int]:
    """Drive a core as a server does, the client closing after the last piece: the statuses."""
    statuses: list[int] = []
    for entry in bytes_in.serve(pieces, Config(limit_request_body=10_000, parser=parser)):
        if isinstance(entry, bytes_in.Refused):
            assert entry.status < 500 or entry.status in PROTOCOL_5XX, entry
            assert entry.response.startswith(b"HTTP/1.1 %d " % entry.status), entry.response[:80]
            statuses.append(entry.status)
        elif isinstance(entry, bytes_in.Served):
            assert entry.response.startswith(b"HTTP/1.1 200 ")
            statuses.append(200)
    return statuses


@pytest.mark.parametrize("parser", PARSERS)
@CORE
@given(pieces=split(request_bytes))
def test_core_answers_any_bytes_without_crashing(parser, pieces):
    serve_in_process(pieces, parser)


@pytest.mark.parametrize("parser", PARSERS)
@CORE
@given(requests=st.lists(valid_requests(), min_size=1, max_size=3), data=st.data())
def test_core_serves_every_valid_request_however_it_is_split(parser, requests, data):
    raw = b"".join(requests)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if b > a]
    statuses = serve_in_process(pieces, parser)
    # HTTP/1.0 closes after its response, and so does a request that asked to.
    assert statuses and set(statuses) == {200}, statuses


# The pieces the raw-head checks are about (line ends, folds, control bytes), between ordinary ones.
HEAD_PIECES = [b"\r\n", b"\r", b"\n", b"\t", b" ", b"\x00", b"\x0b", b"\x7f", b"\x80", b"a", b":"]
HEAD_BYTES = st.binary() | st.lists(st.sampled_from(HEAD_PIECES)).map(b"".join)


@settings(CORE, max_examples=max(2_000, CORE.max_examples))  # a pure function: 2,000 take about a second
@given(HEAD_BYTES)
def test_the_fast_screen_of_a_head_finds_what_the_regex_finds(raw):
    """policy.head_fault clears clean heads without the regex: it must never clear a faulty one."""
    match = grammar.HEAD_FAULT.search(raw)
    assert policy.head_fault(raw) == (match[0] if match else None)


# --- over a socket ------------------------------------------------------------------------------


# The blocking driver (every thread/process mode shares it) and the event loop's own driver, each
# with each parser.
DRIVERS = ("threaded", "event")


@pytest.fixture(scope="module", params=[(d, p) for d in DRIVERS for p in ("h11", "httptools")])
def sink_server(request, tmp_path_factory):
    mode, parser = request.param
    if parser == "httptools" and not config_module.HTTPTOOLS:
        pytest.skip("httptools is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    args = ["--timeout", "3", "--keep-alive", "1", "--limit-request-body", "10000", "--parser", parser]
    with (
        log.open("wb") as err,
        lab_server(mode, port, *args, app="tests.apps:sink", stderr=err) as proc,
    ):
        yield port, proc, log


def exchange(port: int, pieces: list[bytes]) -> bytes:
    """Send the pieces on a fresh connection, close our side, and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = b""
        try:
            for piece in pieces:
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server already answered and closed: read what it sent
            pass
        deadline = time.monotonic() + ANSWER_WITHIN
        while True:
            assert time.monotonic() < deadline, (
                f"no answer or close within {ANSWER_WITHIN} s: {received[:200]!r}"
            )
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                return received
            except TimeoutError:
                pytest.fail(f"no answer or close within {ANSWER_WITHIN} s: {received[:200]!r}")
            if not data:
                return received
            received += data


def answers_normally(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
        assert reply.status == 200 and reply.read() == b"ok 0\n"


def test_server_answers_or_closes_and_never_fails(sink_server):
    port, proc, log = sink_server

    @SOCKET
    @given(pieces=split(request_bytes))
    def one_connection(pieces: list[bytes]) -> None:
        received = exchange(port, pieces)
        assert not received or received.startswith(b"HTTP/1.1 "), received[:200]
        for status in map(int, STATUS_LINE.findall(received)):
            assert status < 500 or status in PROTOCOL_5XX, received[:300]
        assert proc.poll() is None, "the server died"

    one_connection()
    answers_normally(port)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    # each refusal is one log line: nothing indented (a traceback or a multi-line message) follows one
    assert not [line for line in text.splitlines() if line[:1].isspace()], text[-3000:]
