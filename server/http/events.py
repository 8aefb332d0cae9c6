"""What a connection core hands its driver: a validated request head, or "feed me more bytes".

What it does NOT know: how either was read (the cores) or used (WSGI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class NeedData:
    """Sentinel: the core needs more bytes from the client before it can answer."""


NEED_DATA: Final = NeedData


@dataclass(slots=True)
class RequestHead:
    """A validated request line and header block, as bytes."""

    method: bytes
    target: bytes
    path: bytes  # path part of the target ("*" for OPTIONS *)
    query: bytes  # after "?", without it
    authority: bytes | None  # from an absolute-form target; overrides Host (RFC 9112 3.2.2)
    http_version: bytes
    headers: list[tuple[bytes, bytes]]  # lower-cased names
    content_length: int | None
    chunked: bool

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def request_line(self) -> str:
        version = self.http_version.decode()
        return f"{self.method.decode('latin-1')} {self.target.decode('latin-1')} HTTP/{version}"
