"""Run the demo app under Flask's own development server, as ``app.run()`` does.

``python -m app`` is the reference point people actually use: werkzeug with
``threaded=True`` (the default since Flask 1.0).  ``--no-threads`` gives the
Flask 0.12 default, one request at a time.
"""

from __future__ import annotations

import argparse

from app import app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m app", description="Run the wsgi-lab demo app on Flask's development server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument(
        "--no-threads",
        action="store_true",
        help="serve one request at a time (threaded=False, the Flask 0.12 default)",
    )
    parser.add_argument("--debug", action="store_true", help="enable the interactive debugger")
    parser.add_argument("--reload", action="store_true", help="enable the code reloader")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    app.run(
        host=args.host,
        port=args.port,
        threaded=not args.no_threads,
        debug=args.debug,
        use_reloader=args.reload,
        use_debugger=args.debug,
    )


if __name__ == "__main__":
    main()
