"""HTTP/1.1's syntax, each ABNF rule once, as the regexes and byte sets the server matches with.

RFC 9110 (semantics) and RFC 9112 (HTTP/1.1 messages), with the rule cited on
each line.  What it does NOT know: which rule a server enforces where, the
limits, the answers (:mod:`server.http.policy`); it only says what is well formed.
"""

from __future__ import annotations

import re

# RFC 9110 5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
# / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = re.compile(TCHAR + "+")  # on str: response header names from the app (PEP 3333)
# RFC 9112 3: request-line = method SP request-target SP HTTP-version CRLF; method = token; the target
# is visible ASCII (3.2); HTTP-version = "HTTP/" DIGIT "." DIGIT (2.3) -- here only the two we speak.
REQUEST_LINE = re.compile(rb"(%s+) ([\x21-\x7e]+) HTTP/(1\.[01])\r\n" % TCHAR.encode())
# RFC 3986 3.3 / 3.4 as a server reads an origin-form target (RFC 9112 3.2.1): a "%" starts a %HH
# escape (we decode the path); a "#fragment" (RFC 3986 3.5) is tolerated and never part of the path.
ORIGIN_FORM = re.compile(rb"/(?:[^%#?]|%[0-9A-Fa-f]{2})*(?:\?[^#]*)?(?:#.*)?")
# RFC 9112 3.2.2: absolute-form = absolute-URI, for http and https; userinfo is deprecated (RFC 9110
# 4.2.4) but no framing risk.
ABSOLUTE_FORM = re.compile(
    rb"(?i:https?)://(?:[^@/?#]*@)?(?P<authority>[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+)(?P<rest>.*)"
)
# What may be wrong in the raw bytes of a head (or a trailer block), in this order of alternatives:
# obs-fold, a line starting with SP/HTAB (RFC 9112 5.2); a bare CR or a bare LF (RFC 9112 2.2); a
# control character other than HTAB (RFC 9110 5.5: field-value = *( VCHAR / obs-text / SP / HTAB )).
HEAD_FAULT = re.compile(rb"\n[ \t]|\r(?!\n)|(?<!\r)\n|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The bytes a head's lines may hold once their CRLFs are taken out: HTAB, SP, VCHAR and obs-text.
LINE_BYTES = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# RFC 9110 8.6: Content-Length = 1*DIGIT.
DECIMAL = re.compile(rb"[0-9]+")
# RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG.
CHUNK_LINE = re.compile(rb"[0-9A-Fa-f]+(?:;[\t\x20-\x7e\x80-\xff]*)?\r\n")
# Where a header or trailer block ends as h11 reads it: a blank line, with or without its CR.
BLOCK_END = re.compile(rb"\n\r?\n")
# RFC 9110 5.1 / 5.5: field-line = field-name ":" OWS field-value OWS, as a sender writes it: a token
# name, one SP, a value of VCHAR / obs-text with single SP or HTAB runs inside, none at either end.
_VCHARS = rb"[\x21-\x7e\x80-\xff]+"
FIELD_LINES = re.compile(rb"(?:%s+: (?:%s(?:[ \t]+%s)*)?\r\n)*" % (TCHAR.encode(), _VCHARS, _VCHARS))
