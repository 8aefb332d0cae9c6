"""``python -m server`` / ``wsgi-lab-server``: flags in gunicorn's style, each with a ``LAB_*`` twin.

Precedence: command-line flag, then environment variable, then default.  A bad
value stops the program before anything binds, with one line on stderr naming
the flag or variable, and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from server import config as cfg
from server.config import Config, ConfigError
from server.oneline import OneLineParser

log = logging.getLogger("wsgi_lab")
DEFAULTS = Config()


@dataclass(frozen=True)
class Option:
    """One setting: its flags, its env variable, how to parse it and what --help says."""

    field: str
    flags: tuple[str, ...]
    parse: Callable[[str], Any]
    help: str
    metavar: str | None = None
    default_text: str | None = None  # what --help says for a default that depends on the mode

    @property
    def env(self) -> str:
        return "LAB_" + self.field.upper()

    @property
    def flag(self) -> str:
        return self.flags[-1]


def _int(minimum: int) -> Callable[[str], int]:
    return lambda text: cfg.parse_int(text, minimum)


def _seconds(allow_zero: bool) -> Callable[[str], float]:
    return lambda text: cfg.parse_seconds(text, allow_zero)


OPTIONS = (
    Option("mode", ("--mode",), lambda t: cfg.parse_choice(t, cfg.MODES),
           "concurrency model: single (one connection at a time, main thread), threaded (a thread "
           "per connection), forking (a child process per connection), prefork (--workers processes "
           "forked at start share the listener, each serving one connection at a time with keep-alive, "
           "or --threads connections), event (one loop holds every connection; a thread pool runs "
           "complete requests)", "{" + ",".join(cfg.MODES) + "}"),
    Option("bind", ("-b", "--bind"), cfg.parse_bind,
           "address to listen on, HOST:PORT, [IPV6]:PORT or :PORT (port 0 picks a free port)", "HOST:PORT"),
    Option("backlog", ("--backlog",), _int(1), "queue length of pending connections for listen()", "N"),
    Option("timeout", ("--timeout",), _seconds(False),
           "seconds a connection may sit idle before its first request, trickle a request head, or "
           "stall while sending a body or receiving the response; in prefork also the worker heartbeat: "
           "a worker whose request (the app) runs longer is killed and replaced", "SECONDS"),
    Option("keep_alive", ("--keep-alive",), _seconds(True),
           "idle seconds to wait for the next request on a persistent connection; 0 disables keep-alive",
           "SECONDS"),
    Option("graceful_timeout", ("--graceful-timeout",), _seconds(True),
           "on SIGTERM/SIGINT, seconds in-flight requests get to finish before the server exits anyway",
           "SECONDS"),
    Option("max_children", ("--max-children",), _int(1),
           "forking: most child processes at once; beyond it new connections wait in the backlog", "N"),
    Option("max_threads", ("--max-threads",), _int(1),
           "threaded: most connection threads at once; beyond it new connections wait in the backlog", "N"),
    Option("threads", ("--threads",), _int(1),
           "event: threads that run complete requests; idle and slow connections hold none, so this bounds "
           "concurrent app calls, not clients (a few per core keep the cores busy while some wait on I/O); "
           "prefork: connection threads per worker (gunicorn's gthread shape)",
           "N", f"{cfg.EVENT_THREADS} in event mode, 1 in prefork"),
    Option("max_connections", ("--max-connections",), _int(1),
           "event: most open connections at once; beyond it new connections wait in the backlog", "N",
           "the open-file limit minus 64"),
    Option("workers", ("-w", "--workers"), _int(1),
           "prefork: worker processes (gunicorn's -w; without --mode it selects prefork); "
           "SIGTTIN/SIGTTOU add/remove one", "N"),
    Option("max_requests", ("--max-requests",), _int(0),
           "prefork: replace a worker after this many requests, gracefully; 0 = never", "N"),
    Option("max_requests_jitter", ("--max-requests-jitter",), _int(0),
           "prefork: add a random 0..J to --max-requests per worker so they do not restart together", "J"),
    Option("limit_request_line", ("--limit-request-line",), _int(16),
           "longest request line in bytes (without its CRLF); longer gets 414 URI Too Long", "BYTES"),
    Option("limit_request_fields", ("--limit-request-fields",), _int(1),
           "most header fields in a request; more gets 431", "N"),
    Option("limit_request_field_size", ("--limit-request-field-size",), cfg.parse_field_size,
           "longest header field line (name: value and its CRLF) in bytes, 0 for the default "
           f"{cfg.DEFAULT_FIELD_SIZE}; longer gets 431", "BYTES"),
    Option("limit_request_body", ("--limit-request-body",), _int(0),
           "largest request body in bytes, 0 for no limit; larger gets 413 Content Too Large", "BYTES"),
    Option("access_log", ("--access-log",), cfg.parse_access_log,
           "access log file, '-' for stdout; one line per request with pid and thread", "PATH"),
    Option("log_level", ("--log-level",), lambda t: cfg.parse_choice(t, cfg.LOG_LEVELS),
           "error log level on stderr: debug, info, warning, error, critical", "LEVEL"),
    Option("cpu_affinity", ("--cpu-affinity",), cfg.parse_cpus,
           "run the server, its threads and the processes it forks only on these CPUs, e.g. 0 or "
           "0-1,3 (as taskset writes them). Threads that share one GIL hand it over faster on one "
           "core: threaded and event modes need less CPU per request pinned to one, but C code that "
           "releases the GIL (numpy, compression) then has no other core either", "CPUS",
           "every CPU"),
    Option("parser", ("--parser",), cfg.parse_parser,
           "HTTP core: httptools (llhttp in C under our own connection state machine) or h11 (pure "
           "Python, the reference); both obey the same request checks, and a head our core does not take "
           "as plainly valid goes to the h11 core; auto = httptools when it is installed",
           "{" + ",".join(cfg.PARSERS) + "}"),
)  # fmt: skip


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m server",
        description="wsgi-lab's WSGI server: one HTTP/1.1 + PEP 3333 core, several concurrency models. "
        "Every option can also be set with the environment variable shown; flags win.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "app", nargs="?", help="the WSGI application, MODULE:ATTRIBUTE (env LAB_APP), e.g. app:app"
    )
    for option in OPTIONS:
        default = getattr(DEFAULTS, option.field)
        if option.field == "bind":
            default = f"{default[0]}:{default[1]}"
        default_text = default if default is not None else "off"
        parser.add_argument(
            *option.flags,
            dest=option.field,
            metavar=option.metavar,
            default=None,
            help=f"{option.help} (env {option.env}; default {option.default_text or default_text})",
        )
    return parser


def load_config(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    """Flags over ``LAB_*`` over defaults; exits 2 with one line for a bad value."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for option in (Option("app", ("app",), cfg.parse_app, ""), *OPTIONS):
        raw = getattr(args, option.field)
        source = option.flag if option.field != "app" else "APP"
        if raw is None and option.env in environ:
            raw, source = environ[option.env], option.env
        if raw is None:
            continue
        try:
            values[option.field] = option.parse(raw)
        except ConfigError as exc:
            parser.error(f"{source}: {exc}")
    if "app" not in values:
        parser.error("no application given: pass MODULE:ATTRIBUTE (e.g. app:app) or set LAB_APP")
    if "workers" in values and "mode" not in values:
        values["mode"] = "prefork"  # gunicorn's meaning: `-w 4` alone asks for 4 worker processes
    try:
        cfg.check_mode_options(values.get("mode", DEFAULTS.mode), set(values))
    except ConfigError as exc:
        parser.error(str(exc))
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in values.items() if k in known})


def load_app(spec: str) -> Callable:
    """Import ``module:attribute`` (attribute defaults to ``application``)."""
    module_name, _, attribute = spec.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like gunicorn: apps in the current directory just work
    module = importlib.import_module(module_name)
    obj: Any = module
    for name in (attribute or "application").split("."):
        obj = getattr(obj, name)
    if not callable(obj):
        raise TypeError(f"{spec} is a {type(obj).__name__}, not a WSGI callable")
    return obj


def configure_logging(config: Config) -> None:
    error_log = logging.getLogger("wsgi_lab")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"))
    error_log.handlers[:] = [handler]
    error_log.setLevel(config.log_level_number)
    error_log.propagate = False
    access = logging.getLogger("wsgi_lab.access")
    access.propagate = False
    access.setLevel(logging.INFO)
    access.handlers.clear()
    if config.access_log:
        target = (
            logging.StreamHandler(sys.stdout)
            if config.access_log == "-"
            else logging.FileHandler(config.access_log, encoding="utf-8")
        )
        target.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(target)


def main(argv: list[str] | None = None) -> int:
    from server.workers import MODELS  # late: keeps `--help` fast

    config = load_config(argv)
    prog = "python -m server"
    try:
        configure_logging(config)
    except OSError as exc:
        print(
            f"{prog}: error: --access-log: cannot open {config.access_log!r}: {exc.strerror}", file=sys.stderr
        )
        return 2
    try:
        app = load_app(config.app)
    except Exception as exc:
        log.debug("loading %s failed", config.app, exc_info=True)
        print(f"{prog}: error: cannot load app {config.app!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    server = MODELS[config.mode](app, config)
    try:
        server.bind()
    except OSError as exc:
        host, port = config.bind
        print(f"{prog}: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return server.run(f"{config.app} parser={parser_note(config)}")  # the start-up line says which


def parser_note(config: Config) -> str:
    """The request parser in use, and why it is h11 when nobody asked for h11."""
    if config.parser_in_use == "h11" and config.parser == "auto":
        return "h11 (httptools is not installed: parsing in pure Python, slower)"
    return config.parser_in_use


if __name__ == "__main__":
    sys.exit(main())
