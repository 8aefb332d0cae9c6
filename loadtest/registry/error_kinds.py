"""What went wrong with one request, in the few words every record and row counts it by."""

from __future__ import annotations

# Error kinds a per-request record can carry ("" for a 2xx answer), in the order a row counts them.
ERROR_KINDS = ("non_2xx", "connection_refused", "connection_reset", "timeout", "other")


def error_kind(status: int | None, exception: BaseException | None) -> str:
    """What went wrong with one request: "" when it got a 2xx answer, else one of ERROR_KINDS.

    A status outside 2xx is ``non_2xx`` whatever the client made of it; with no
    status, the exception's type (or, for wrapped errors, its text) names the kind.
    ``connection_reset`` is any connection the server dropped before answering:
    geventhttpclient reports an RST and an early close alike as
    ``HTTPConnectionClosed('connection closed.')``.
    """
    if status and not 200 <= status < 300:
        return "non_2xx"
    if exception is None:
        return "" if status else "other"
    text = f"{type(exception).__name__} {exception}".lower()
    if isinstance(exception, ConnectionRefusedError) or "refused" in text:
        return "connection_refused"
    if isinstance(exception, ConnectionResetError | BrokenPipeError) or "reset" in text or "closed" in text:
        return "connection_reset"
    if isinstance(exception, TimeoutError) or "timeout" in text or "timed out" in text:
        return "timeout"
    return "other"
