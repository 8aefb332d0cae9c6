"""One test per request rule of the HTTP cores, in h11's style: bytes in, status and reason out, no socket.

Each refused case is one that h11 0.16 alone lets through (or answers with a
less precise status); the accepted cases are valid requests that must not be
caught by the same checks.  A refusal is checked by its status and by the start
of its reason (the text that goes into the log line and the error body), so a
400 given for some other fault does not pass: where h11 itself refuses first,
the reason expected is h11's.  That a refusal closes the connection and the
server serves on is tested over real sockets in test_http.py.
"""

from __future__ import annotations

import pytest

from server.config import Config
from server.http import new_core
from server.http.errors import REASON_MAX_CHARS, HTTPError
from server.http.events import NEED_DATA, RequestHead
from tests.bytes_in import ACCEPTED, outcome

pytestmark = pytest.mark.usefixtures("either_parser")  # each test runs with h11 and with httptools

HOST = b"Host: h\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


# Where h11 refuses before our checks run, the reason is its own.
H11_BAD_LINE = "illegal header line"
H11_BAD_CHUNK = "illegal chunk header"
H11_BAD_REQUEST_LINE = "illegal request line"
H11_BAD_LENGTH = "bad Content-Length"


def assert_refused(data: bytes, status: int, reason: str, **config) -> None:
    """``data`` gets ``status``, for a reason that starts with ``reason``."""
    got = outcome(data, **config)
    assert got[0] == status and got[1].startswith(reason), got


def get(*fields: bytes, line: bytes = b"GET / HTTP/1.1") -> bytes:
    return line + b"\r\n" + b"".join(fields) + b"\r\n"


def post(*fields: bytes, body: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\n" + HOST + b"".join(fields) + b"\r\n" + body


# --- RFC 9110 5.5: control characters in field values ---------------------------------------------


@pytest.mark.parametrize("char", [b"\x01", b"\x07", b"\x08", b"\x1b", b"\x1f", b"\x7f"])
def test_control_character_in_a_field_value_is_400(char):
    reason = f"control character 0x{char[0]:02x} in a field (RFC 9110 5.5)"
    assert_refused(get(HOST, b"X-A: a" + char + b"b\r\n"), 400, reason)


@pytest.mark.parametrize("char", [b"\x00", b"\r"], ids=["NUL", "bare CR"])
def test_nul_and_bare_cr_in_a_field_value_are_400_from_h11(char):
    assert_refused(get(HOST, b"X-A: a" + char + b"b\r\n"), 400, H11_BAD_LINE)


def test_htab_and_obs_text_in_a_field_value_are_fine():
    assert outcome(get(HOST, b"X-A: a\tb caf\xe9\r\n")) == ACCEPTED


# --- RFC 9112 2.2 / 5.2: line endings and obs-fold ----------------------------------------------


OBS_FOLD = "obs-fold line continuation (RFC 9112 5.2)"


def test_obs_fold_continuation_is_400():
    assert_refused(get(HOST, b"X-A: a\r\n b\r\n"), 400, OBS_FOLD)


def test_obs_fold_with_a_tab_is_400():
    assert_refused(get(HOST, b"X-A: a\r\n\tb\r\n"), 400, OBS_FOLD)


def test_bare_lf_line_endings_are_400():
    assert_refused(b"GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF in the head (RFC 9112 2.2)")


# --- RFC 9112 6.1 / 6.3 / 7: Transfer-Encoding ----------------------------------------------------


TE_IN_HTTP10 = "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1)"
CHUNKED_NOT_LAST = "chunked must be the last transfer coding, applied once (RFC 9112 6.3)"


def test_transfer_encoding_in_http10_is_400():
    assert_refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, TE_IN_HTTP10)


def test_unknown_transfer_encoding_in_http10_is_400_too():
    assert_refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400, TE_IN_HTTP10)


def test_chunked_not_last_is_400():
    assert_refused(post(b"Transfer-Encoding: chunked, gzip\r\n"), 400, CHUNKED_NOT_LAST)


def test_chunked_twice_is_400():
    twice = post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", body=b"0\r\n\r\n")
    assert_refused(twice, 400, CHUNKED_NOT_LAST)


def test_unknown_transfer_coding_is_501():
    assert_refused(post(b"Transfer-Encoding: gzip, chunked\r\n"), 501, "Only Transfer-Encoding: chunked")


def test_transfer_coding_names_are_case_insensitive():
    assert outcome(post(b"Transfer-Encoding: Chunked\r\n", body=b"0\r\n\r\n")) == ACCEPTED


# --- RFC 9110 8.6: Content-Length is a plain decimal --------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"5, 5", "Content-Length is not a plain decimal number (RFC 9110 8.6)"),  # h11 would take it as 5
        (b"5,5", "Content-Length is not a plain decimal number (RFC 9110 8.6)"),
        *[(value, H11_BAD_LENGTH) for value in (b"+5", b"-5", b"5 5", b"0x5", b"5.0", b"")],
    ],
)
def test_content_length_that_is_not_a_plain_decimal_is_400(value, reason):
    assert_refused(post(b"Content-Length: " + value + b"\r\n", body=b"hello"), 400, reason)


def test_content_length_with_surrounding_whitespace_is_fine():
    assert outcome(post(b"Content-Length:  5 \r\n", body=b"hello")) == ACCEPTED


# --- RFC 9110 5.3: singleton fields --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (HOST + b"Host: other\r\n", "Found multiple Host: headers"),  # h11's own check
        (
            HOST + b"Content-Length: 5\r\nContent-Length: 5\r\n",
            "repeated content-length field (RFC 9110 5.3)",
        ),
        (
            HOST + b"Content-Type: text/plain\r\nContent-Type: application/json\r\n",
            "repeated content-type field (RFC 9110 5.3)",
        ),
    ],
    ids=["Host", "Content-Length", "Content-Type"],
)
def test_repeated_singleton_field_is_400(fields, reason):
    assert_refused(b"POST / HTTP/1.1\r\n" + fields + b"\r\nhello", 400, reason)


def test_repeated_list_fields_are_fine():
    assert outcome(get(HOST, b"Accept: a/b\r\nAccept: c/d\r\nCookie: a=1\r\nCookie: b=2\r\n")) == ACCEPTED


# --- RFC 9110 6.5.1: trailers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [b"Content-Length", b"Transfer-Encoding", b"Host", b"Authorization", b"Trailer", b"TE"]
)
def test_forbidden_field_in_trailers_is_400(name):
    # A value each field could carry in the head ("5"), so that only the place is wrong.
    reason = f"{name.decode().lower()} is not allowed in trailers (RFC 9110 6.5.1)"
    assert_refused(CHUNKED + b"2\r\nab\r\n0\r\n" + name + b": 5\r\n\r\n", 400, reason)


def test_obs_fold_in_trailers_is_400():
    assert_refused(CHUNKED + b"0\r\nX-Sum: a\r\n b\r\n\r\n", 400, "in the trailers: " + OBS_FOLD)


def test_control_character_in_trailers_is_400():
    reason = "in the trailers: control character 0x01 in a field (RFC 9110 5.5)"
    assert_refused(CHUNKED + b"0\r\nX-Sum: a\x01b\r\n\r\n", 400, reason)


def test_an_ordinary_trailer_is_fine():
    assert outcome(CHUNKED + b"2\r\nab\r\n0\r\nX-Checksum: 1234\r\n\r\n") == ACCEPTED


# --- RFC 9112 7.1: chunk-size lines --------------------------------------------------------------


BAD_CHUNK_LINE = "malformed chunk-size line"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"2 \r\n", BAD_CHUNK_LINE),
        (b"2\t\r\n", BAD_CHUNK_LINE),
        (b"2;a=\rb\r\n", BAD_CHUNK_LINE),
        (b"2;a\x00\r\n", BAD_CHUNK_LINE),
        (b"2\r\r\n", H11_BAD_CHUNK),
        (b"2\n", H11_BAD_CHUNK),
        (b" 2\r\n", H11_BAD_CHUNK),
    ],
)
def test_malformed_chunk_size_line_is_400(line, reason):
    assert_refused(CHUNKED + line + b"ab\r\n0\r\n\r\n", 400, reason)


def test_malformed_last_chunk_line_is_400():
    assert_refused(CHUNKED + b"2\r\nab\r\n0 \r\n\r\n", 400, "malformed chunk-size line b'0 \\r\\n'")


def test_chunk_extensions_are_fine():
    assert outcome(CHUNKED + b"2;name=value\r\nab\r\n3;x\r\ncde\r\n0;last\r\n\r\n") == ACCEPTED


def test_chunk_lines_are_checked_however_the_bytes_arrive():
    """The check follows h11's reading, so a body split at every byte gives the same answers."""
    for body, status in [
        (b"2\r\nab\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", 200),
        (b"2\r\nab\r\n1 \r\nx\r\n0\r\n\r\n", 400),
    ]:
        core = new_core(Config())
        core.receive(CHUNKED)
        assert isinstance(core.next_head(), RequestHead)
        got = []
        try:
            for i in range(len(body)):
                core.receive(body[i : i + 1])
                while (piece := core.next_body()) not in (NEED_DATA, b""):
                    got.append(piece)
            result = 200
        except HTTPError as exc:
            result = exc.status
            assert exc.reason.startswith(BAD_CHUNK_LINE), exc.reason
        assert result == status
        if status == 200:
            assert b"".join(got) == b"ab" + b"x" * 16


# --- RFC 9112 3: the request line ----------------------------------------------------------------


@pytest.mark.parametrize("method", [b"G(T", b"GE\x01T", b"G:T", b"\xc3\xa9"])
def test_method_that_is_not_a_token_is_400(method):
    assert_refused(get(HOST, line=method + b" / HTTP/1.1"), 400, H11_BAD_REQUEST_LINE)


def test_unknown_but_valid_method_is_accepted_for_the_app_to_answer():
    assert outcome(get(HOST, line=b"PURGE / HTTP/1.1")) == ACCEPTED


@pytest.mark.parametrize("version", [b"0.9", b"1.2", b"2.0", b"3.0", b"9.9"])
def test_http_version_other_than_10_and_11_is_505(version):
    reason = f"HTTP/{version.decode()} is not supported (RFC 9112 2.3)"
    assert_refused(get(HOST, line=b"GET / HTTP/" + version), 505, reason)


def test_fragment_is_accepted_and_not_part_of_the_path():
    core = new_core(Config())
    core.receive(get(HOST, line=b"GET /a%20b?x=1#frag HTTP/1.1"))
    head = core.next_head()
    assert isinstance(head, RequestHead)
    assert (head.path, head.query, head.target) == (b"/a%20b", b"x=1", b"/a%20b?x=1#frag")


@pytest.mark.parametrize(
    ("target", "authority", "path", "query"),
    [
        (b"http://user:pw@example.com:8080/a?b#c", b"example.com:8080", b"/a", b"b"),
        (b"http://user@example.com", b"example.com", b"/", b""),
        (b"HTTPS://example.com?q", b"example.com", b"/", b"q"),
        (b"http://example.com#top", b"example.com", b"/", b""),
    ],
)
def test_absolute_form_targets_with_and_without_userinfo(target, authority, path, query):
    core = new_core(Config())
    core.receive(get(HOST, line=b"GET " + target + b" HTTP/1.1"))
    head = core.next_head()
    assert isinstance(head, RequestHead)
    assert (head.authority, head.path, head.query) == (authority, path, query)


# --- limits: each line and the whole head --------------------------------------------------------


def test_header_line_over_the_field_limit_is_431_even_when_mostly_whitespace():
    line = get(HOST, b"X-A:" + b" " * 200 + b"v\r\n")
    assert_refused(line, 431, "header line longer than 100 bytes", limit_request_field_size=100)


def test_header_line_at_the_field_limit_is_fine():
    assert outcome(get(HOST, b"X-A: " + b"v" * 93 + b"\r\n"), limit_request_field_size=100) == ACCEPTED


def test_whole_head_over_its_limit_is_431_even_when_it_arrives_at_once():
    """h11 bounds a head only while it is incomplete; a head that arrives whole is measured too."""
    config = Config(limit_request_fields=10, limit_request_field_size=100)
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 90) for i in range(60))
    core = new_core(config)
    core.receive(get(HOST, fields))
    with pytest.raises(HTTPError) as refused:
        core.next_head()
    assert refused.value.status == 431
    assert refused.value.reason == f"request head larger than {config.max_head_size} bytes"


def test_the_reason_for_a_refusal_stays_short_even_for_a_huge_bad_field():
    core = new_core(Config())
    core.receive(get(HOST, b"X-A: " + b"v" * 5000 + b"\x00\r\n"))
    with pytest.raises(HTTPError) as refused:
        core.next_head()
    assert refused.value.status == 400 and len(refused.value.reason) <= REASON_MAX_CHARS + 3
