"""HTTP/1.1 and PEP 3333 behaviour of the lab server in every mode, through real sockets.

Every test runs once per mode (single, threaded, forking, prefork, event)
against that mode's server from the session-wide ``mode_server`` fixture
(conftest.py), which runs ``tests.apps:validated``: every app call is checked
by ``wsgiref.validate``.  The tests talk to it with raw bytes, so malformed
requests can be sent exactly as written.  A test that could hurt the server
ends by asserting that it still serves a new client.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import BODY_LIMIT, KEEP_ALIVE_S, TIMEOUT_S, ModeServer


@dataclass
class Reply:
    status: int
    reason: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    complete: bool = True  # False: the connection ended before the body did


class Client:
    """A raw HTTP/1.x client: send exact bytes, parse replies one at a time (keep-alive, pipelining)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> Client:
        self.sock.sendall(data)
        return self

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buf += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"connection closed, buffered {self.buf[:200]!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def reply(self, method: str = "GET") -> Reply:
        version, status, *reason = self._line().decode("latin-1").split(" ", 2)
        r = Reply(int(status), reason[0] if reason else "", version)
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            key = name.strip().lower()
            r.headers[key] = f"{r.headers[key]}, {value.strip()}" if key in r.headers else value.strip()
        if r.status < 200 or r.status in (204, 304) or method == "HEAD":
            return r
        if r.headers.get("transfer-encoding") == "chunked":
            while True:
                try:
                    size = int(self._line().split(b";")[0], 16)
                except ConnectionError:
                    r.complete = False
                    return r
                if size == 0:
                    while self._line():  # trailers
                        pass
                    return r
                chunk = self._exact(size + 2)
                if chunk is None:
                    r.complete = False
                    return r
                r.body += chunk[:-2]
        if "content-length" in r.headers:
            data = self._exact(int(r.headers["content-length"]))
            r.complete = data is not None
            r.body = data or b""
            return r
        while self._fill():  # close-delimited
            pass
        r.body, self.buf = self.buf, b""
        return r

    def request(self, method: str, target: str, headers: dict | None = None, body: bytes = b"") -> Reply:
        self.send(build(method, target, headers, body))
        return self.reply(method)

    def closed_by_server(self, within: float = 3.0) -> bool:
        """True if the server closes the connection (EOF or reset) within ``within`` s, sending nothing."""
        self.sock.settimeout(within)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return data == b"" and not self.buf

    def close(self) -> None:
        self.sock.close()


def build(
    method: str, target: str, headers: dict | None = None, body: bytes = b"", version: str = "1.1"
) -> bytes:
    headers = {"Host": "lab.test", **(headers or {})}
    if body and "Transfer-Encoding" not in headers:
        headers.setdefault("Content-Length", str(len(body)))
    head = f"{method} {target} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


def chunked(body: bytes, size: int = 10) -> bytes:
    parts = [
        b"%x;ext=1\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.fixture
def server(mode_server) -> ModeServer:
    return mode_server


@pytest.fixture
def port(mode_server) -> int:
    return mode_server.port


def assert_serving(server: ModeServer) -> None:
    """The server is alive and answers a new client.

    Close the test's own connection first: after refusing a request the server reads
    on until its client closes (up to LINGER_SECONDS), and single mode meanwhile serves
    no one else.
    """
    assert server.proc.poll() is None, f"the {server.mode} server died"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(build("GET", "/health", {"Connection": "close"}))
        assert s.recv(100).startswith(b"HTTP/1.1 200")


def env_of(reply: Reply) -> dict:
    assert reply.status == 200, reply
    return json.loads(reply.body)


# --- persistent connections, pipelining, framing ------------------------------------------------


def test_keep_alive_reuses_the_connection(port):
    c = Client(port)
    first = env_of(c.request("GET", "/env"))
    second = env_of(c.request("GET", "/env?again=1"))
    assert first["REMOTE_PORT"] == second["REMOTE_PORT"]
    assert second["QUERY_STRING"] == "again=1"
    c.close()


def test_pipelined_requests_are_answered_in_order(port):
    c = Client(port)
    body = b"pipelined body"
    c.send(
        build("GET", "/stream?n=2")
        + build("POST", "/echo", body=body)
        + build("HEAD", "/stream")
        + build("GET", "/env?third=1")
    )
    assert c.reply().body == b"part 0\npart 1\n"
    assert json.loads(c.reply().body)["sha256"] == hashlib.sha256(body).hexdigest()
    head = c.reply("HEAD")
    assert head.status == 200 and head.body == b""
    assert env_of(c.reply())["QUERY_STRING"] == "third=1"
    c.close()


def test_chunked_request_body_then_next_request(port):
    body = os.urandom(3000)
    c = Client(port)
    r = c.request("POST", "/echo?chunk=1000", {"Transfer-Encoding": "chunked"}, chunked(body, 333))
    assert json.loads(r.body) == {"bytes": 3000, "sha256": hashlib.sha256(body).hexdigest()}
    assert c.request("GET", "/health").status == 200
    c.close()


def test_readline_and_iteration_stop_at_the_end_of_the_body(port):
    c = Client(port)
    c.send(build("POST", "/lines", body=b"one\ntwo\nthree") + build("GET", "/health"))
    assert json.loads(c.reply().body) == {"first": "one\n", "rest": ["two\n", "three"]}
    assert c.reply().body == b"ok"  # wsgi.input did not eat the pipelined request
    c.close()


def test_expect_100_continue_is_sent_when_the_app_reads(port):
    c = Client(port)
    body = os.urandom(300_000)  # above the event mode's in-memory spool: its temporary file too
    c.send(build("POST", "/echo", {"Expect": "100-continue", "Content-Length": str(len(body))}))
    interim = c.reply()
    assert interim.status == 100  # only then is the body sent
    c.send(body)
    assert json.loads(c.reply().body) == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    c.close()


def test_expect_100_continue_is_not_sent_when_the_app_does_not_read(server):
    if server.mode == "event":
        pytest.skip(
            "event mode reads every body before the app runs (server/workers/event.py), so it sends "
            "100 Continue as soon as it accepts the head; the test above covers that"
        )
    c = Client(server.port)
    c.send(build("POST", "/noread", {"Expect": "100-continue", "Content-Length": "5000"}))
    r = c.reply()
    assert r.status == 200 and r.body == b"did not read the body"
    # The client may or may not send its body now: the only safe move is to close.
    assert r.headers.get("connection") == "close" or c.closed_by_server()
    c.close()


def test_head_sends_headers_but_no_body(port):
    c = Client(port)
    get = c.request("GET", "/fixed")
    head = c.request("HEAD", "/fixed")
    assert head.status == 200 and head.headers["content-length"] == get.headers["content-length"]
    head_stream = c.request("HEAD", "/stream")
    assert head_stream.headers.get("transfer-encoding") == "chunked"
    assert c.request("GET", "/health").body == b"ok"  # nothing stray was left on the connection
    c.close()


def test_response_framing_content_length_chunked_and_close_delimited(port):
    c = Client(port)
    known = c.request("GET", "/env")  # the app gives Content-Length: we keep it
    assert (
        int(known.headers["content-length"]) == len(known.body) and "transfer-encoding" not in known.headers
    )
    many = c.request("GET", "/stream?n=3")  # several blocks, HTTP/1.1: chunked
    assert many.headers["transfer-encoding"] == "chunked" and many.body == b"part 0\npart 1\npart 2\n"
    empty = c.request("GET", "/empty")  # no body at all: we can say so
    assert empty.headers["content-length"] == "0" and empty.body == b""
    none = c.request("GET", "/nocontent")
    assert none.status == 204 and "content-length" not in none.headers
    c.close()
    old = Client(port).send(build("GET", "/stream?n=3", version="1.0"))
    r = old.reply()  # HTTP/1.0 knows no chunks: the end of the body is the end of the connection
    assert (
        r.version == "HTTP/1.1" and "transfer-encoding" not in r.headers and "content-length" not in r.headers
    )
    assert r.body == b"part 0\npart 1\npart 2\n"
    old.close()


def test_write_callable(port):
    assert Client(port).request("GET", "/write").body == b"written then returned"


def test_client_connection_close_is_honoured(port):
    c = Client(port)
    r = c.request("GET", "/health", {"Connection": "close"})
    assert r.status == 200 and r.headers["connection"] == "close"
    assert c.closed_by_server()


def test_idle_keep_alive_connection_is_closed_by_the_server(port):
    c = Client(port)
    assert c.request("GET", "/health").status == 200
    started = time.monotonic()
    assert c.closed_by_server(within=KEEP_ALIVE_S + 3.0)
    assert time.monotonic() - started >= KEEP_ALIVE_S - 0.1  # not at once: after --keep-alive


def test_http10_request_gets_connection_closed(port):
    c = Client(port)
    r = c.send(build("GET", "/health", version="1.0")).reply()
    assert r.status == 200 and r.headers.get("connection") == "close"
    assert c.closed_by_server()


def test_unread_small_body_is_drained_and_the_connection_reused(port):
    c = Client(port)
    assert c.request("POST", "/noread", body=b"z" * 10_000).status == 200
    assert c.request("GET", "/health").body == b"ok"
    c.close()


def test_unread_large_body_closes_the_connection_instead(server, port):
    c = Client(port)
    size = 900_000
    c.send(build("POST", "/noread", {"Content-Length": str(size)}))
    sender = threading.Thread(target=lambda: _quietly(c.sock.sendall, b"q" * size), daemon=True)
    sender.start()
    r = c.reply()
    assert r.status == 200
    # The leftover body is never parsed as a request: the server closes instead.
    c.sock.settimeout(5)
    rest = b""
    while True:
        try:
            data = c.sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        rest += data
    assert b"HTTP/1.1" not in rest
    c.close()
    assert_serving(server)


def _quietly(fn, *args) -> None:
    with contextlib.suppress(OSError):
        fn(*args)


# --- requests that must be refused ------------------------------------------------------------

MALFORMED = {
    "garbage": b"this is not http\r\n\r\n",
    "no version": b"GET /\r\nHost: x\r\n\r\n",
    "bad version": b"GET / HTTP/x.y\r\nHost: x\r\n\r\n",
    "space in target": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "target without slash": b"GET abc HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad percent escape": b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "asterisk with GET": b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    "CONNECT authority-form": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "absolute-form other scheme": b"GET ftp://x/a HTTP/1.1\r\nHost: x\r\n\r\n",
    "missing Host in 1.1": b"GET / HTTP/1.1\r\n\r\n",
    "two Host headers": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "NUL in header value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare CR in header value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "NUL in request line": b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "leading whitespace": b" GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad Content-Length": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "negative Content-Length": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "conflicting Content-Lengths": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    ),
    "Content-Length and Transfer-Encoding": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "TLS handshake": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
    # Smuggling classics h11 alone lets through (each rule is tested in test_protocol_rules.py).
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "BEL in header value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x07b\r\n\r\n",
    "Content-Length list": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab",
    "Transfer-Encoding in HTTP/1.0": (
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    ),
    "chunk size with trailing space": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n"
    ),
    "Content-Length in trailers": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 9\r\n\r\n"
    ),
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_gets_4xx_and_close(server, raw):
    c = Client(server.port)
    c.send(raw)
    r = c.reply()
    assert 400 <= r.status < 500, (r.status, r.body)
    assert r.headers.get("connection") == "close"
    assert c.closed_by_server()
    c.close()
    assert_serving(server)


def test_unknown_transfer_coding_is_501(server):
    c = Client(server.port)
    r = c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n").reply()
    assert r.status == 501 and c.closed_by_server()
    c.close()
    assert_serving(server)


def test_unsupported_http_version_is_505_and_the_server_serves_on(server):
    c = Client(server.port)
    r = c.send(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").reply()
    assert r.status == 505 and r.headers.get("connection") == "close" and c.closed_by_server()
    c.close()
    assert_serving(server)


def test_a_refused_request_is_logged_in_one_line(server):
    since = server.log.stat().st_size
    Client(server.port).send(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tfolded\r\n\r\n").reply()
    log = _wait_for_log(server.log, "obs-fold", since)
    line = next(line for line in log.splitlines() if "obs-fold" in line)
    assert "400" in line and "Traceback" not in log.split(line)[1][:200]


MANY_FIELDS = "".join(f"X-H{i}: v\r\n" for i in range(150)).encode()
OVER_A_LIMIT = {  # over the default limits of server.config.Config
    "request line too long": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "request line without end": (b"GET /" + b"a" * 100_000, 414),  # refused before the line ends
    "too many fields": (b"GET / HTTP/1.1\r\nHost: x\r\n" + MANY_FIELDS + b"\r\n", 431),
    "field too long": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    "endless head": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 2_000_000, 431),
}


@pytest.mark.parametrize(("raw", "status"), OVER_A_LIMIT.values(), ids=OVER_A_LIMIT.keys())
def test_a_head_over_a_limit_is_refused(server, raw, status):
    r = Client(server.port).send(raw).reply()
    assert r.status == status
    assert_serving(server)


def test_body_over_the_limit_is_413_before_it_is_read(server):
    c = Client(server.port)
    head = {"Content-Length": str(BODY_LIMIT + 1), "Expect": "100-continue"}
    r = c.send(build("POST", "/echo", head)).reply()
    assert r.status == 413  # and no "100 Continue" came first
    assert c.closed_by_server()
    c.close()
    assert_serving(server)


@pytest.mark.parametrize("target", ["/echo?chunk=65536", "/echo-catching"])
def test_chunked_body_over_the_limit_is_413(server, target):
    """Also when the app catches the error from wsgi.input and answers 500 itself, as Flask does."""
    c = Client(server.port)
    c.send(build("POST", target, {"Transfer-Encoding": "chunked"}))
    sender = threading.Thread(
        target=lambda: _quietly(c.sock.sendall, chunked(b"y" * (BODY_LIMIT + 100_000), 65536)), daemon=True
    )
    sender.start()
    assert c.reply().status == 413
    c.close()
    assert_serving(server)


STALLS = {
    "head": b"GET / HTTP/1.1\r\nHost: x\r\n",  # ... and never the blank line
    "body": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",  # 7 bytes never come
}


@pytest.mark.slow
def test_a_stalled_head_or_body_times_out_with_408(server):
    """Both stalls at once, so the test waits --timeout once (twice in single mode: one at a time)."""
    started = time.monotonic()
    clients = {stall: Client(server.port).send(data) for stall, data in STALLS.items()}
    waits = 1 if server.mode != "single" else len(STALLS)
    for stall, c in clients.items():
        r = c.reply()
        c.close()
        assert r.status == 408, (stall, r)
        assert TIMEOUT_S - 0.1 <= time.monotonic() - started < waits * TIMEOUT_S + 3.0, stall
    assert_serving(server)


# --- application errors and vanishing clients ---------------------------------------------------


def test_app_error_before_the_response_is_500_with_a_traceback(server):
    since = server.log.stat().st_size
    r = Client(server.port).request("GET", "/error-before")
    assert r.status == 500
    log = _wait_for_log(server.log, "deliberate failure before the response started", since)
    assert "Traceback" in log
    assert_serving(server)


def test_app_error_after_the_response_started_cuts_the_connection(server):
    since = server.log.stat().st_size
    c = Client(server.port)
    r = c.request("GET", "/error-after")
    assert r.status == 200 and not r.complete and r.body.startswith(b"first part")
    _wait_for_log(server.log, "deliberate failure after the response started", since)
    c.close()
    assert_serving(server)


def test_exc_info_replaces_headers_not_yet_sent(port):
    r = Client(port).request("GET", "/exc-info")
    assert r.status == 503 and r.headers["x-replaced"] == "yes" and r.body == b"error page"


def test_exc_info_after_the_head_was_sent_reraises(port):
    r = Client(port).request("GET", "/exc-info-late")
    assert r.status == 200 and not r.complete


def test_client_gone_mid_response_does_not_hurt_the_server(server):
    c = Client(server.port)
    c.send(build("GET", "/big?mb=50"))
    assert c.sock.recv(1000).startswith(b"HTTP/1.1 200")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not FIN
    c.close()
    time.sleep(0.3)
    assert_serving(server)


def test_close_is_called_on_every_response_iterable(port):
    """Counted in a file (tests/apps.py), so that the children of forking and prefork count too."""
    before = json.loads(Client(port).request("GET", "/closed").body)["closed"]
    c = Client(port)
    for target in ("/health", "/stream", "/error-after", "/exc-info"):
        c = Client(port)
        c.request("GET", target)
        c.close()
    c = Client(port)
    c.request("HEAD", "/stream")
    c.close()
    time.sleep(0.3)
    after = json.loads(Client(port).request("GET", "/closed").body)["closed"]
    assert after - before >= 6  # the five above and the first /closed


# --- the WSGI environ, checked by wsgiref.validate on every request -----------------------------

SHAPES = {
    "plain GET": build("GET", "/env"),
    "query string": build("GET", "/env?a=1&b=%20x&c"),
    "percent-encoded path": build("GET", "/env/caf%C3%A9%2Fx"),
    "HEAD": build("HEAD", "/env"),
    "POST form": build("POST", "/env", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1"),
    "chunked POST": build("POST", "/env", {"Transfer-Encoding": "chunked"}, chunked(b"data")),
    "PUT": build("PUT", "/env", body=b"{}"),
    "DELETE": build("DELETE", "/env"),
    "PATCH": build("PATCH", "/env", body=b"x"),
    "OPTIONS *": build("OPTIONS", "*"),
    "absolute-form": build("GET", "http://other.test:8080/env?q=1"),
    "HTTP/1.0 without Host": b"GET /env HTTP/1.0\r\n\r\n",
    "repeated header": build("GET", "/env", {"Accept": "a/b", "accept": "c/d"}),
    "cookies": b"GET /env HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
    "underscore header": build("GET", "/env", {"X_Spoof": "1", "X-Real": "2"}),
    "empty query": build("GET", "/env?"),
    "latin-1 header": build("GET", "/env", {"X-Name": "caf\xe9"}),
    "fragment": build("GET", "/env?q=1#frag"),
    "absolute-form with userinfo": build("GET", "http://user:pw@other.test/env#frag"),
}


@pytest.mark.parametrize("raw", SHAPES.values(), ids=SHAPES.keys())
def test_validator_accepts_every_request_shape(port, raw):
    c = Client(port)
    method = raw.split(b" ", 1)[0].decode()
    r = c.send(raw).reply(method)
    assert r.status == 200, r.body  # wsgiref.validate turns any environ slip into a 500
    c.close()


# (wsgi.multithread, wsgi.multiprocess) each mode must declare (prefork here runs one thread per worker).
CONCURRENCY_FLAGS = {
    "single": (False, False),
    "threaded": (True, False),
    "forking": (False, True),
    "prefork": (False, True),
    "event": (True, False),
}


def test_environ_contents(server):
    port = server.port
    c = Client(port)
    env = env_of(c.request("GET", "/env/caf%C3%A9?x=%20y", {"X-Name": "caf\xe9", "Content-Type": "text/x"}))
    assert env["types"] == ["str"]
    assert env["SERVER_SOFTWARE"] == f"wsgi-lab/0.1.0 {server.mode}"
    assert env["PATH_INFO"] == "/env/caf\xc3\xa9"  # decoded bytes, seen as latin-1 (PEP 3333)
    assert env["SCRIPT_NAME"] == "" and env["QUERY_STRING"] == "x=%20y"
    assert env["REQUEST_METHOD"] == "GET" and env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"].isdigit()
    assert env["SERVER_PORT"] == str(port) and env["HTTP_HOST"] == "lab.test"
    assert env["HTTP_X_NAME"] == "caf\xe9" and env["CONTENT_TYPE"] == "text/x"
    assert "HTTP_CONTENT_TYPE" not in env
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"]) == CONCURRENCY_FLAGS[server.mode]
    assert env["wsgi.input_terminated"] is True and env["wsgi.url_scheme"] == "http"
    spoof = env_of(c.request("GET", "/env", {"X_Real": "spoofed", "Cookie": "a=1"}))
    assert "HTTP_X_REAL" not in spoof and spoof["HTTP_COOKIE"] == "a=1"
    absolute = env_of(c.request("GET", "http://other.test:8080/env?q=1"))
    assert absolute["HTTP_HOST"] == "other.test:8080" and absolute["PATH_INFO"] == "/env"
    fragment = env_of(c.request("GET", "/env/a?q=1#frag"))
    assert (fragment["PATH_INFO"], fragment["QUERY_STRING"]) == ("/env/a", "q=1")
    userinfo = env_of(c.request("GET", "http://user:pw@other.test/env"))
    assert userinfo["HTTP_HOST"] == "other.test" and userinfo["PATH_INFO"] == "/env"
    c.close()


def test_http_client_library_round_trip(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = os.urandom(200_000)
    conn.request("POST", "/echo?chunk=8192", body=iter([body[:100_000], body[100_000:]]))  # chunked
    r = conn.getresponse()
    assert json.loads(r.read())["sha256"] == hashlib.sha256(body).hexdigest()
    conn.request("GET", "/stream?n=50")
    assert conn.getresponse().read().count(b"\n") == 50
    conn.close()


def _wait_for_log(path: Path, text: str, since: int, timeout: float = 5.0) -> str:
    """The error log from byte ``since`` on, once ``text`` is in it (the server is shared by many tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = _read_from(path, since)
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the error log:\n{_read_from(path, since)[-3000:]}")


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
