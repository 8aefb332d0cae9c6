"""Flask's development server for any WSGI app: what ``app.run()`` does, minus Flask.

``app.run()`` ends in ``werkzeug.serving.run_simple``; calling that directly
lets bring-your-own apps (Flask or not) run under the ``flask-dev`` targets.
"""

from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from .byo import load_app


class OneLineParser(argparse.ArgumentParser):
    """server.oneline's rule (a bad flag is one line, exit 2) without importing ``server``, which a
    team's environment lacks or has as its own module."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m loadtest.inserver.devserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--no-threads", action="store_true", help="threaded=False (Flask 0.12 default)")
    parser.add_argument(
        "--processes", type=int, default=1, help="fork a process per request, at most N at once (default 1)"
    )
    parser.add_argument("app", help="the app, as gunicorn takes it")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error(f"--processes must be at least 1, got {args.processes}")
    forking = args.processes > 1
    run_simple(
        args.host,
        args.port,
        load_app(args.app),
        threaded=not (args.no_threads or forking),
        processes=args.processes,
    )


if __name__ == "__main__":
    main()
