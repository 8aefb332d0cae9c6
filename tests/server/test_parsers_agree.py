"""Our core over llhttp and the h11 reference core are one server: the same bytes in, the same outcome out.

A differential test in h11's style (bytes in, events out, no socket): hypothesis
builds request streams from the pieces parsers disagree on -- line ends, folds,
control bytes, odd methods and versions, duplicate and conflicting framing
fields, chunked framings, limits at their boundary -- splits them at random
points, and two cores, one per parser, serve them as a server does.  For each
request both give the same refusal (status and reason) or the same parsed
request (method, target, version, fields in order, body bytes, ``100 Continue``,
the response bytes and whether the connection carries another request).
"""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import config as config_module
from server.config import Config
from server.http import new_core
from server.http.core import LlhttpCore
from server.http.errors import HTTPError
from server.http.events import RequestHead
from server.http.reference import H11Core
from tests import bytes_in

pytestmark = pytest.mark.skipif(not config_module.HTTPTOOLS, reason="httptools is not installed")

EXAMPLES = {"ci": 600, "fuzz": 20_000}
AGREE = settings(
    max_examples=EXAMPLES[os.environ.get("LAB_FUZZ_PROFILE", "ci")],
    deadline=None,
    database=None,
    print_blob=True,
)

METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"PURGE", b"-BLARGH", b"get", b"CONNECT", b"G@T"]
TARGETS = [b"/", b"/a?b=c", b"/%41", b"/%zz", b"*", b"http://h:1/x", b"/f#frag", b"/{x}", b"/caf\xe9", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.10", b"http/1.1"]
SPACES = [b" ", b" ", b" ", b"  ", b"\t"]
EOLS = [b"\r\n"] * 8 + [b"\n", b"\r", b"\r\r\n"]
FIELDS = [
    b"Host: h",
    b"Host: h",
    b"Host: other",
    b"Host:",
    b"Content-Length: 5",
    b"Content-Length: 0",
    b"Content-Length:  5 ",
    b"Content-Length: 5, 5",
    b"Content-Length: +5",
    b"Content-Length: 05",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: Chunked",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, gzip",
    b"Transfer-Encoding: identity",
    b"Expect: 100-continue",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: upgrade",
    b"Upgrade: h2c",
    b"Content-Type: text/plain",
    b"Accept: a/b",
    b"X-A: a\tb caf\xe9",
    b"X-B:  spaced  ",
    b"X-C:",
    b" folded",
    b"\tfolded",
    b"X-D: bell\x07",
    b"X-E: del\x7f",
    b"X-F: nul\x00",
    b"X Bad: name",
    b"X-G : before colon",
    b"Cookie: a=1",
]
CHUNK_LINES = [b"5", b"5 ", b"5;ext=1", b"5\t", b"+5", b"0x5", b"g", b"05"]
TRAILERS = [b"", b"X-Sum: 1\r\n", b"Vary: *\r\n", b"Content-Length: 5\r\n", b"Host: h\r\n", b" fold\r\n"]


@st.composite
def heads(draw) -> bytes:
    """A request head from pieces parsers read differently, with its line ends."""
    method, target, version = (draw(st.sampled_from(x)) for x in (METHODS, TARGETS, VERSIONS))
    line = method + draw(st.sampled_from(SPACES)) + target + draw(st.sampled_from(SPACES)) + version
    eol = draw(st.sampled_from(EOLS))
    fields = draw(st.lists(st.sampled_from(FIELDS), max_size=6))
    if draw(st.booleans()):  # a field whose line length sits at a limit drawn below
        fields.append(b"X-Long: " + b"v" * draw(st.integers(0, 40)))
    lines = [line, *fields]
    return b"".join(x + draw(st.sampled_from(EOLS)) for x in lines) + eol


@st.composite
def bodies(draw) -> bytes:
    """What follows a head: nothing, bytes, or a chunked framing (well or badly formed)."""
    kind = draw(st.sampled_from(["none", "bytes", "chunked"]))
    if kind == "none":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=12))
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        size_line = draw(st.sampled_from(CHUNK_LINES))
        out += size_line + b"\r\n" + b"hello" + draw(st.sampled_from([b"\r\n", b"\n", b""]))
    return out + b"0\r\n" + draw(st.sampled_from(TRAILERS)) + b"\r\n"


CLEAN_FIELDS = [b"Accept: */*", b"Cookie: a=1", b"Content-Type: text/plain", b"X-A: a\tb caf\xe9", b"X-B: v "]
FRAMING = [b"", b"", b"Connection: close", b"Connection: keep-alive", b"Expect: 100-continue"]
FRAMING += [b"Upgrade: h2c"]


@st.composite
def clean_requests(draw) -> bytes:
    """A well-formed request (framed by Content-Length, chunked or nothing), the common case."""
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"PURGE", b"OPTIONS"]))
    target = draw(st.sampled_from([b"/", b"/a?b=c", b"/%41", b"http://h:1/x", b"/f#frag"]))
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    fields = [b"Host: h"] if version == b"1.1" or draw(st.booleans()) else []
    fields += draw(st.lists(st.sampled_from(CLEAN_FIELDS), max_size=3))
    fields.append(draw(st.sampled_from(FRAMING)))
    body = draw(st.binary(max_size=10))
    framing = draw(st.sampled_from(["length", "length", "chunked", "none"]))
    if framing == "length":
        fields.append(b"Content-Length: %d" % (len(body) + draw(st.sampled_from([0, 0, 0, 1, -1]))))
    elif framing == "chunked":
        fields.append(b"Transfer-Encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    else:
        body = b""
    fields = draw(st.permutations([f for f in fields if f]))
    lines = b"".join(f + b"\r\n" for f in fields)
    return b"%s %s HTTP/%s\r\n%s\r\n%s" % (method, target, version, lines, body)


# Responses whose framing each core decides on its own: Content-Length, chunked or close-delimited
# (by the request's version), none for HEAD / 204 / 304, ``Connection: close``, the app's own Date
# and Server, a list-form or zero-padded Content-Length -- read first or answered before the body.
ANSWERS = [
    bytes_in.Answer(),
    bytes_in.Answer(headers=((b"Content-Type", b"text/plain"),), chunks=(b"ab", b"", b"cd")),
    bytes_in.Answer(headers=(), chunks=()),
    bytes_in.Answer(status=204, reason=b"No Content", headers=(), chunks=()),
    bytes_in.Answer(status=304, reason=b"Not Modified", headers=((b"Content-Length", b"5"),), chunks=()),
    bytes_in.Answer(close=True),
    bytes_in.Answer(headers=((b"X-A", b"a b"),), chunks=(b"x",), close=True),
    bytes_in.Answer(status=500, reason=b"Oops", headers=((b"Server", b"me"), (b"Date", b"d"))),
    bytes_in.Answer(headers=((b"content-length", b"02"), (b"Content-Length", b"02"))),
    bytes_in.Answer(headers=((b"Content-Length", b"2, 2"),)),
    bytes_in.Answer(read_body=False),
    bytes_in.Answer(headers=(), chunks=(b"abc",), read_body=False),
]


@st.composite
def streams(draw) -> tuple[list[bytes], Config, bytes_in.Answer]:
    """One to three requests, cut into the pieces in which they arrive, limits near their sizes, an answer."""
    odd = st.builds(lambda head, body: head + body, heads(), bodies())
    requests = draw(st.lists(st.one_of(clean_requests(), clean_requests(), odd), min_size=1, max_size=3))
    raw = b"".join(requests)
    if draw(st.booleans()):
        raw += draw(st.binary(max_size=8))
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if b > a]
    config = Config(
        limit_request_line=draw(st.sampled_from([4094, 4094, 16, 20, 24, 30])),
        limit_request_fields=draw(st.sampled_from([100, 100, 2, 3, 5])),
        limit_request_field_size=draw(st.sampled_from([8190, 8190, 20, 30, 45, 50])),
        limit_request_body=draw(st.sampled_from([0, 100, 4, 5])),
    )
    return pieces, config, draw(st.sampled_from(ANSWERS))


def serve(pieces: list[bytes], config: Config, answer: bytes_in.Answer, parser: str) -> list[bytes_in.Entry]:
    """What each request got with ``parser`` (``tests.bytes_in.serve``), checking that core really ran."""
    config = Config(**{**config.__dict__, "parser": parser})
    assert type(new_core(config)) is (LlhttpCore if parser == "httptools" else H11Core)
    return bytes_in.serve(pieces, config, answer)


@AGREE
@given(streams())
def test_both_cores_give_the_same_outcome(stream):
    pieces, config, answer = stream
    assert serve(pieces, config, answer, "httptools") == serve(pieces, config, answer, "h11")


def test_our_core_serves_an_ordinary_connection_itself():
    """It is a core, not a forwarder: plain keep-alive GETs never reach h11."""
    core = new_core(Config(parser="httptools"))
    for _ in range(3):
        core.receive(b"GET /x?y HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n")
        head = core.next_head()
        assert isinstance(head, RequestHead) and head.target == b"/x?y"
        core.response_head(200, b"OK", [(b"Content-Length", b"0")])
        core.response_end()
        assert core.start_next_cycle()
    assert type(core) is LlhttpCore


@pytest.mark.parametrize(
    "data",
    [
        b"-BLARGH / HTTP/1.1\r\nHost: h\r\n\r\n",  # a token llhttp does not know as a method
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",  # llhttp reads it; we answer 505
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",  # llhttp takes the double space; h11 refuses it
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",  # chunked: h11
    ],
)
def test_what_our_core_does_not_take_goes_to_the_reference(data):
    core = new_core(Config(parser="httptools"))
    core.receive(data)
    with contextlib.suppress(HTTPError):
        core.next_head()
    assert type(core) is H11Core  # handed over: h11 and the policy gave the answer
