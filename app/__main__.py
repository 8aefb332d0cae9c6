"""Run the demo app under Flask's own development server, as ``app.run()`` does.

``python -m app`` is the reference point people actually use: werkzeug with
``threaded=True`` (the default since Flask 1.0).  ``--no-threads`` gives the
Flask 0.12 default, one request at a time; ``--processes N`` gives werkzeug's
third server class, ``ForkingWSGIServer`` (a forked child per request, at most
N at once), which cannot be combined with threads.
"""

from __future__ import annotations

import argparse

from app import app


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app", description="Run the wsgi-lab demo app on Flask's development server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    threads = parser.add_mutually_exclusive_group()
    threads.add_argument(
        "--threads",
        dest="threaded",
        action="store_const",
        const=True,
        help="a thread per request (threaded=True; the default unless --processes is above 1)",
    )
    threads.add_argument(
        "--no-threads",
        dest="threaded",
        action="store_const",
        const=False,
        help="serve one request at a time (threaded=False, the Flask 0.12 default)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="fork a child per request, at most N at once (werkzeug's ForkingWSGIServer; default 1)",
    )
    parser.add_argument("--debug", action="store_true", help="enable the interactive debugger")
    parser.add_argument("--reload", action="store_true", help="enable the code reloader")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.processes < 1:
        parser.error(f"--processes must be at least 1, got {args.processes}")
    if args.threaded is None:
        args.threaded = args.processes == 1
    return args


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parse_args(parser, argv)
    try:
        app.run(
            host=args.host,
            port=args.port,
            threaded=args.threaded,
            processes=args.processes,
            debug=args.debug,
            use_reloader=args.reload,
            use_debugger=args.debug,
        )
    except ValueError as exc:
        # werkzeug's make_server refuses impossible combinations (threads and
        # processes) before binding: its own words, on one line.
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
