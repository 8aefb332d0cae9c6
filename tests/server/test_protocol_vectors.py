"""Request vectors where we follow gunicorn's boundaries: bytes in, status and reason out, no socket.

- Trailers (RFC 9110 6.5.1): a sender must not put content metadata or request
  modifiers (``Content-Type``, ``Vary``, ``Cookie`` ...) in trailers, and a
  recipient must not merge them into the header section.  The request itself
  is valid, so those fields are discarded and logged; only the fields that
  could change the framing or whom the request is for are refused (400), the
  set gunicorn refuses.
- ``--limit-request-field-size`` counts a header field line with its CRLF, and
  0 means the default (8190); ``--limit-request-line`` counts the request line
  without its CRLF.  Both are gunicorn's flags, so they mean what gunicorn's do.
"""

from __future__ import annotations

import logging

import pytest

from server.cli import load_config
from server.config import DEFAULT_FIELD_SIZE, Config
from server.http import new_core
from server.http.errors import HTTPError
from server.http.events import NEED_DATA, RequestHead
from tests.bytes_in import ACCEPTED, outcome

pytestmark = pytest.mark.usefixtures("either_parser")  # each test runs with h11 and with httptools

HOST = b"Host: h\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


def body_of(data: bytes) -> bytes:
    core = new_core(Config())
    core.receive(data)
    assert isinstance(core.next_head(), RequestHead)
    body = b""
    while piece := core.next_body():
        assert piece is not NEED_DATA
        body += piece
    return body


# --- trailers: discard what must not be merged, refuse what could reframe ------------------------

VARY_AND_CONTENT_TYPE = CHUNKED + b"5\r\nhello\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n"


def test_trailers_with_vary_and_content_type_are_accepted_and_the_body_is_whole():
    assert outcome(VARY_AND_CONTENT_TYPE) == ACCEPTED
    assert body_of(VARY_AND_CONTENT_TYPE) == b"hello"


def test_discarded_trailer_fields_are_named_in_the_log(caplog):
    with caplog.at_level(logging.INFO, logger="wsgi_lab"):
        outcome(VARY_AND_CONTENT_TYPE)
    assert "trailer field(s) vary, content-type discarded" in caplog.text


def test_an_ordinary_trailer_is_not_logged(caplog):
    with caplog.at_level(logging.INFO, logger="wsgi_lab"):
        assert outcome(CHUNKED + b"0\r\nX-Checksum: 1\r\n\r\n") == ACCEPTED
    assert "discarded" not in caplog.text


@pytest.mark.parametrize("name", [b"Cookie", b"Content-Encoding", b"Cache-Control", b"Expect", b"Range"])
def test_other_fields_not_to_be_merged_are_discarded_too(name):
    assert outcome(CHUNKED + b"0\r\n" + name + b": x\r\n\r\n") == ACCEPTED


@pytest.mark.parametrize(
    "name", [b"Content-Length", b"Transfer-Encoding", b"Trailer", b"TE", b"Host", b"Authorization"]
)
def test_trailers_that_could_reframe_or_redirect_are_400(name):
    reason = f"{name.decode().lower()} is not allowed in trailers (RFC 9110 6.5.1)"
    assert outcome(CHUNKED + b"2\r\nab\r\n0\r\n" + name + b": 1\r\n\r\n") == (400, reason)


# --- --limit-request-field-size: a field line with its CRLF ---------------------------------------


def field_line(total_with_crlf: int) -> bytes:
    """A header field line of exactly ``total_with_crlf`` bytes, CRLF included."""
    return b"X-A: " + b"v" * (total_with_crlf - len(b"X-A: ") - 2) + b"\r\n"


def get(*fields: bytes) -> bytes:
    return b"GET / HTTP/1.1\r\n" + HOST + b"".join(fields) + b"\r\n"


def test_a_field_line_of_8189_bytes_plus_crlf_is_over_the_default_8190():
    assert outcome(get(field_line(8191))) == (431, "header line longer than 8190 bytes")


def test_a_field_line_of_8188_bytes_plus_crlf_is_at_the_default_and_fine():
    assert outcome(get(field_line(8190))) == ACCEPTED


def test_the_field_limit_counts_the_crlf_at_any_setting():
    config = Config(limit_request_field_size=100)
    assert outcome(get(field_line(100)), config) == ACCEPTED
    assert outcome(get(field_line(101)), config) == (431, "header line longer than 100 bytes")


def test_limit_request_field_size_0_means_the_default():
    config = load_config(["--limit-request-field-size", "0", "app:app"], environ={})
    assert config.limit_request_field_size == DEFAULT_FIELD_SIZE == 8190
    assert outcome(get(field_line(8191)), config) == (431, "header line longer than 8190 bytes")


def test_limit_request_field_size_given_is_kept():
    config = load_config(["--limit-request-field-size", "300", "app:app"], environ={})
    assert config.limit_request_field_size == 300


# --- --limit-request-line: the request line without its CRLF ------------------------------------


def request_line(length: int) -> bytes:
    """``GET /aaa... HTTP/1.1`` of exactly ``length`` bytes, without CRLF."""
    return b"GET /" + b"a" * (length - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"


def test_a_request_line_at_the_limit_is_fine():
    assert outcome(request_line(4094) + b"\r\n" + HOST + b"\r\n") == ACCEPTED


def test_a_request_line_one_byte_over_the_limit_is_414():
    reason = "request line longer than 4094 bytes"
    assert outcome(request_line(4095) + b"\r\n" + HOST + b"\r\n") == (414, reason)


def test_a_request_line_over_the_limit_is_414_before_it_ends():
    core = new_core(Config())
    core.receive(request_line(4200)[:4100])  # the client is still sending
    with pytest.raises(HTTPError) as refused:
        core.next_head()
    assert (refused.value.status, refused.value.reason) == (414, "request line longer than 4094 bytes")
