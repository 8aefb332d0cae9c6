"""Names shared by the locustfile and the compare runner, without importing locust.

(Importing locust monkey-patches the standard library with gevent; the
compare runner uses real threads and subprocesses, so it must not.)
"""

from __future__ import annotations

# scenario name -> locust user classes (space-separated) in loadtest/generator/locustfile.py
SCENARIO_CLASSES = {
    "hello": "HelloUser",
    "io": "IoUser",
    "cpu": "CpuUser",
    "mixed": "MixedUser",
    "slow": "SlowClient SlowNormalUser",
}
SLOW_CLIENTS = 200  # slow scenario: connections held by slow clients, above every bounded model's slots
SLOW_HEAD_START_S = 2.0  # slow scenario: normal users start this long after the slow clients
SLOW_NORMAL_TIMEOUT_S = 5.0  # slow scenario: a normal user gives up on a request after this (a timeout)


def parse_hosts(spec: str) -> dict[str, str]:
    """``"a=http://x:8000,b=http://y:8000"`` -> ``{"a": "http://x:8000", ...}``.

    Raises ValueError naming the bad entry, so every caller can turn it into
    a one-line error.
    """
    hosts: dict[str, str] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        if not sep or not name or not url.startswith(("http://", "https://")) or url[-3:] == "://":
            raise ValueError(f"bad host entry {item!r}: expected name=http://host:port")
        if name in hosts:
            raise ValueError(f"host name {name!r} appears twice")
        hosts[name] = url
    return hosts


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


# make tune's open-loop generator (loadtest/generator/arrivals.py) names a record "s<step> __step__"
# at each step's start; the tune runner (loadtest/tune/ladder.py) slices the records by them.
STEP_MARKER = "__step__"


def step_name(step: int, what: str) -> str:
    """A record's name in a tune ladder: ``s<step> <path>`` (or ``s<step> __step__`` at a step's start)."""
    return f"s{step} {what}"


def parse_step_name(name: str) -> tuple[int, str] | None:
    """``s3 /a`` -> (3, "/a"); None for a name ``step_name`` did not make."""
    head, sep, what = name.partition(" ")
    if not sep or head[:1] != "s" or not head[1:].isdigit():
        return None
    return int(head[1:]), what
