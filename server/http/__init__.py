"""HTTP/1.1 for one client connection, sans-IO: bytes in, validated requests out; responses in, bytes out.

Two cores answer the same calls: :mod:`server.http.core` (ours, over llhttp;
``--parser auto|httptools``) and :mod:`server.http.reference` (h11; ``--parser
h11``), both obeying :mod:`server.http.policy`.  :func:`new_core` makes the one
a :class:`~server.config.Config` asks for.  The layout and the choice are in
docs/server.md.

What this package does NOT know: sockets, timeouts, WSGI, threads or processes.
"""

from __future__ import annotations

from server.config import Config
from server.http.core import LlhttpCore
from server.http.reference import H11Core


def new_core(config: Config) -> LlhttpCore | H11Core:
    """A connection's core: ours over llhttp unless the config says h11 (or httptools is missing)."""
    return LlhttpCore(config) if config.parser_in_use == "httptools" else H11Core(config)
