"""Server configuration: one dataclass, its defaults and the checks on each value.

The CLI (``server.cli``) fills a :class:`Config` from flags and ``LAB_*``
environment variables; everything else only reads it.  Validation lives here so
that a bad value is refused once, before anything binds or forks, with a
message that names the option.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from functools import cached_property

from server import __version__

# The concurrency models; each is a module in server/workers/ and a line in server.workers.MODELS.
MODES = ("single", "threaded", "forking", "prefork", "event")
# Options that only some models read: given explicitly for another model, they are refused.
MODE_ONLY = {
    "workers": ("prefork",),
    "threads": ("prefork", "event"),
    "max_requests": ("prefork",),
    "max_requests_jitter": ("prefork",),
    "max_connections": ("event",),
}
# gunicorn's default and meaning: a header field line counted with its CRLF; 0 on the command line means this.
DEFAULT_FIELD_SIZE = 8190
EVENT_THREADS = 8  # event mode pool: two cores busy even while some requests wait on I/O
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# Request parsers (server.http): h11 (pure Python, the reference core) or httptools (llhttp in C, under
# our own core); auto = httptools when it is installed.
PARSERS = ("auto", "h11", "httptools")
HTTPTOOLS = importlib.util.find_spec("httptools") is not None


class ConfigError(ValueError):
    """A value that cannot be used; the message says what was expected."""


@dataclass(frozen=True)
class Config:
    """Everything the server needs to know; defaults follow gunicorn where it has one."""

    app: str = ""
    mode: str = "threaded"
    bind: tuple[str, int] = ("127.0.0.1", 8000)
    backlog: int = 2048
    timeout: float = 30.0  # a connection may sit idle mid-request or trickle a request this long
    keep_alive: float = 5.0  # idle seconds between requests on a persistent connection; 0 = no keep-alive
    graceful_timeout: float = 30.0
    max_children: int = 40
    max_threads: int = 64
    workers: int = 1  # prefork: worker processes (gunicorn's -w)
    threads: int | None = None  # threads per prefork worker / in the event pool; None = the model's default
    max_requests: int = 0  # prefork: a worker is replaced after this many requests; 0 = never
    max_requests_jitter: int = 0  # prefork: plus a random 0..J, so workers do not all restart at once
    max_connections: int | None = None  # open connections at once (event); None = the fd limit
    limit_request_line: int = 4094
    limit_request_fields: int = 100
    limit_request_field_size: int = DEFAULT_FIELD_SIZE  # a field line with its CRLF
    limit_request_body: int = 100 * 1024 * 1024  # 0 = unlimited
    access_log: str | None = None  # None = off, "-" = stdout, else a file path
    log_level: str = "info"
    cpu_affinity: tuple[int, ...] | None = None  # CPUs the server (and what it forks) may run on; None = all
    parser: str = "auto"  # one of PARSERS

    @cached_property
    def parser_in_use(self) -> str:
        """``h11`` or ``httptools``: what ``auto`` means here (httptools if it can be imported)."""
        if self.parser == "auto":
            return "httptools" if HTTPTOOLS else "h11"
        return self.parser

    @cached_property  # read on every response: computed once (the dataclass is frozen)
    def server_software(self) -> str:
        """What ``SERVER_SOFTWARE`` says; loadtest/inserver/identity.py derives ``lab-<mode>`` from it."""
        return f"wsgi-lab/{__version__} {self.mode}"

    @cached_property
    def max_head_size(self) -> int:
        """Bytes h11 may buffer for one request head: the line plus every allowed field."""
        return (
            self.limit_request_line + 2 + self.limit_request_fields * (self.limit_request_field_size + 2) + 2
        )

    @property
    def log_level_number(self) -> int:
        return getattr(logging, self.log_level.upper())


# --- converters: text (from a flag or an env var) -> value, or ConfigError ---------------------


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ConfigError(f"expected [IPV6]:PORT, got {text!r}")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ConfigError(f"expected HOST:PORT, got {text!r}")
        if ":" in host:
            raise ConfigError(f"put an IPv6 address in brackets ([::1]:8000), got {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"port must be a number from 0 to 65535, got {text!r}")
    return (host or "0.0.0.0", int(port))


def parse_int(text: str, minimum: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"must be at least {minimum}, got {value}")
    return value


def parse_field_size(text: str) -> int:
    """``--limit-request-field-size``: bytes of a field line with its CRLF; 0 means the default (gunicorn)."""
    return parse_int(text, 0) or DEFAULT_FIELD_SIZE


def parse_seconds(text: str, allow_zero: bool) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(f"expected a number of seconds, got {text!r}") from None
    if (
        value != value
        or value in (float("inf"), float("-inf"))
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ConfigError(f"must be {'>= 0' if allow_zero else '> 0'} seconds, got {text!r}")
    return value


def parse_cpus(text: str) -> tuple[int, ...]:
    """``--cpu-affinity``: CPU numbers as taskset and cgroups write them (``0``, ``0-3``, ``0,2-3``)."""
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("CPU affinity is not supported on this platform")
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()) or (dash and int(last) < int(first)):
            raise ConfigError(f"expected CPU numbers such as 0, 0-3 or 0,2-3, got {text!r}")
        cpus.update(range(int(first), int(last if dash else first) + 1))
    available = os.sched_getaffinity(0)
    if missing := sorted(cpus - available):
        have = ",".join(str(c) for c in sorted(available))
        raise ConfigError(f"CPU {missing[0]} is not available to this process (it may use {have})")
    return tuple(sorted(cpus))


def parse_choice(text: str, choices: tuple[str, ...]) -> str:
    value = text.strip().lower()
    if value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}, got {text!r}")
    return value


def parse_parser(text: str) -> str:
    """``--parser``: a name from :data:`PARSERS`; httptools only where it is installed."""
    value = parse_choice(text, PARSERS)
    if value == "httptools" and not HTTPTOOLS:
        raise ConfigError("httptools is not installed (pip install httptools), use auto or h11")
    return value


def parse_app(text: str) -> str:
    """``module:attribute`` (dotted on both sides); the import happens later, in cli."""
    module, sep, attr = text.strip().partition(":")
    names = [*module.split("."), *(attr.split(".") if sep else [])]
    if not module or (sep and not attr) or not all(n.isidentifier() for n in names):
        raise ConfigError(f"expected MODULE:ATTRIBUTE such as app:app, got {text!r}")
    return text.strip()


def check_mode_options(mode: str, given: set[str]) -> None:
    """Refuse an option the chosen model would silently ignore (e.g. ``--workers`` without prefork)."""
    for name, modes in MODE_ONLY.items():
        usable = [m for m in modes if m in MODES]
        if name in given and mode not in usable:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} applies to --mode {' or '.join(usable)}, not {mode}")


def parse_access_log(text: str) -> str | None:
    text = text.strip()
    return text or None
