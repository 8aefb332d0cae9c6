"""The HTTP cores in h11's style: bytes in, request heads or statuses out -- no socket, no thread.

The socket-level behaviour (timeouts, draining, lingering) is tested in
test_http.py; these pin the sans-IO core that every mode shares.
"""

from __future__ import annotations

import pytest

from server.config import Config
from server.http import new_core
from server.http.core import LlhttpCore
from server.http.errors import ClientGone, HTTPError, ResponseError
from server.http.events import NEED_DATA, RequestHead
from server.http.reference import H11Core

pytestmark = pytest.mark.usefixtures("either_parser")  # each test runs with h11 and with httptools


def core_with(data: bytes, **config) -> LlhttpCore | H11Core:
    core = new_core(Config(**config))
    core.receive(data)
    return core


def refusal_of(data: bytes, **config) -> tuple[int, str]:
    """(status, reason) the server refuses the head with; fails if it accepts it."""
    try:
        head = core_with(data, **config).next_head()
    except HTTPError as exc:
        return exc.status, exc.reason
    raise AssertionError(f"accepted: {head}")


def test_a_complete_head_comes_out_validated():
    head = core_with(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n").next_head()
    assert isinstance(head, RequestHead)
    assert (head.method, head.path, head.query, head.has_body) == (b"GET", b"/a%20b", b"x=1", False)


def test_a_partial_head_needs_data_and_then_completes():
    core = core_with(b"GET / HTTP/1.1\r\nHo")
    assert core.next_head() is NEED_DATA
    assert core.head_started
    core.receive(b"st: h\r\n\r\n")
    assert isinstance(core.next_head(), RequestHead)


def test_a_client_that_closes_between_requests_gives_none():
    core = core_with(b"")
    assert core.next_head() is None


LINE_TOO_LONG = (414, f"request line longer than {Config().limit_request_line} bytes")


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", LINE_TOO_LONG),
        (b"GET /" + b"a" * 5000, LINE_TOO_LONG),  # refused before the line is even complete
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 9000 + b"\r\n\r\n",
            (431, f"header line longer than {Config().limit_request_field_size} bytes"),
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            (400, "both Content-Length and Transfer-Encoding"),
        ),
        (b"GET ht!tp://x/ HTTP/1.1\r\nHost: h\r\n\r\n", (400, "malformed request target")),
        (b"GET nothing HTTP/1.1\r\nHost: h\r\n\r\n", (400, "malformed request target")),
        (b"GET / HTTP/1.1\r\n\r\n", (400, "Missing mandatory Host: header")),  # h11's own check
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
            (413, "request body larger than 10 bytes"),
        ),
    ],
)
def test_refused_heads(data, refusal):
    assert refusal_of(data, limit_request_body=10) == refusal


def test_chunked_body_in_pieces_and_its_end():
    core = core_with(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    head = core.next_head()
    assert isinstance(head, RequestHead) and head.chunked
    assert core.next_body() == b"abc"
    assert core.next_body() is NEED_DATA
    core.receive(b"0\r\n\r\n")
    assert core.next_body() == b""


def test_body_over_the_limit_is_413_while_streaming():
    core = core_with(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
        limit_request_body=5,
    )
    core.next_head()
    with pytest.raises(HTTPError) as err:
        core.next_body()
    assert (err.value.status, err.value.reason) == (413, "request body larger than 5 bytes")


def test_client_closing_mid_body_is_refused_not_served():
    core = core_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
    core.next_head()
    assert core.next_body() == b"abc"
    core.receive(b"")  # EOF with 7 body bytes missing
    with pytest.raises((HTTPError, ClientGone)):
        core.next_body()


def test_100_continue_is_produced_once_when_the_body_is_wanted():
    core = core_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    core.next_head()
    assert core.continue_response().startswith(b"HTTP/1.1 100 ")
    assert core.continue_response() == b""


def test_response_bytes_and_a_pipelined_second_request():
    core = core_with(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert core.next_head().path == b"/1"
    assert core.next_body() == b""  # a bodyless request ends with its head
    out = core.response_head(200, b"OK", [(b"Content-Length", b"2")], b"hi") + core.response_end()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nhi")
    assert core.start_next_cycle()
    assert core.head_started  # the pipelined request is already buffered
    assert core.next_head().path == b"/2"


@pytest.mark.parametrize(
    ("request_bytes", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", False),  # h11: MUST_CLOSE, not DONE
        (b"GET / HTTP/1.0\r\n\r\n", False),
    ],
)
def test_a_request_without_a_body_is_complete_with_its_head(request_bytes, keep_alive):
    """No body read is ever needed (none would come): the event loop must not wait for one."""
    core = core_with(request_bytes)
    assert isinstance(core.next_head(), RequestHead)
    assert not core.body_unread and not core.input_pending
    assert core.next_body() == b"" and core.next_body() == b""
    core.response_head(200, b"OK", [(b"Content-Length", b"0")])
    core.response_end()
    assert core.start_next_cycle() is keep_alive


def test_error_response_closes_and_names_the_status():
    core = core_with(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    core.next_head()
    out = core.error_response(503, "busy")
    assert out.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"connection: close" in out.lower() and out.endswith(b"503 busy\n")
    assert not core.start_next_cycle()


def test_head_responses_carry_no_body():
    core = core_with(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    core.next_head()
    core.response_head(200, b"OK", [(b"Content-Length", b"5")])
    assert not core.wants_body
    assert core.response_data(b"hello") == b""


def response_to(
    request: bytes, headers: list[tuple[bytes, bytes]], close: bool = False
) -> tuple[bytes, LlhttpCore | H11Core]:
    core = core_with(request)
    core.next_head()
    return core.response_head(200, b"OK", headers, close=close), core


def test_response_head_lines_are_h11s_framing_then_our_fields():
    head, core = response_to(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", [(b"Content-Type", b"text/plain"), (b"Content-Length", b"2")]
    )
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK" and lines[1] == b"Content-Length: 2"
    assert [line.split(b":")[0] for line in lines[2:5]] == [b"Date", b"Server", b"Content-Type"]
    assert head.endswith(b"text/plain\r\n\r\n") and head.count(b"\r\n\r\n") == 1
    assert core.response_data(b"hi") == b"hi" and core.response_end() == b""
    assert core.next_body() == b"" and core.start_next_cycle()  # keep-alive


def test_response_head_without_a_length_is_chunked_for_11_and_closes_for_10():
    head, _ = response_to(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", [(b"X-A", b"1")])
    assert b"Transfer-Encoding: chunked\r\n" in head and b"X-A: 1\r\n" in head
    head, core = response_to(b"GET / HTTP/1.0\r\n\r\n", [(b"X-A", b"1")])
    assert b"Transfer-Encoding" not in head and b"Connection: close\r\n" in head
    core.response_end()
    assert not core.start_next_cycle()


def test_response_head_keeps_the_apps_date_and_server_and_closes_when_asked():
    fields = [(b"date", b"Thu, 01 Jan 1970 00:00:00 GMT"), (b"SERVER", b"x"), (b"Content-Length", b"0")]
    head, core = response_to(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", fields, close=True)
    assert head.count(b"Date:") + head.count(b"date:") == 1 and b"Server:" not in head
    assert b"Connection: close\r\n" in head
    core.response_end()
    assert not core.start_next_cycle()


@pytest.mark.parametrize(
    "field",
    [
        (b"X-A", b"a\x00b"),
        (b"X-A", b"a\x7f"),
        (b"X-A", b" a"),
        (b"X-A", b"a\t"),
        (b"X A", b"a"),
        (b"X-A", b"a\r\nX-B: b"),
    ],
)
def test_response_head_refuses_a_field_h11_would_refuse(field):
    core = core_with(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    core.next_head()
    with pytest.raises(ResponseError, match=r"invalid response header field b'X.A'$"):
        core.response_head(200, b"OK", [field, (b"Content-Length", b"0")])


def test_each_run_of_this_module_uses_its_parser(either_parser):
    """The fixture's two runs really are two cores (ours only with httptools)."""
    assert type(new_core(Config())) is (LlhttpCore if either_parser == "httptools" else H11Core)
