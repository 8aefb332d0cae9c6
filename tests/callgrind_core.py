"""Instructions per keep-alive request around a trivial WSGI app, counted by callgrind (``make callgrind``).

Single mode's loop (:func:`server.connection.serve_request` over
:class:`server.connection.HTTPConnection`), in one process and one thread: the
client end of a socket pair writes ``GET /`` and reads the response between
two requests, so nothing waits and the count is deterministic.  The figure is
``(Ir at 700 requests - Ir at 200) / 500``: start-up and import cost cancel out.

    python -m tests.callgrind_core [--parser auto|h11|httptools]   # runs valgrind twice
    python -m tests.callgrind_core --serve N                        # what valgrind runs
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: callgrind\r\nAccept: */*\r\n\r\n"
COUNTS = (200, 700)


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def serve(requests: int, parser: str) -> None:
    """Serve ``requests`` keep-alive requests on one connection, as single mode does."""
    from server.config import Config
    from server.connection import HTTPConnection, ServeContext, serve_request
    from server.wsgi import connection_environ

    config = Config(parser=parser)

    class NeverSet:
        def is_set(self) -> bool:
            return False

        def fileno(self) -> int:
            return -1

    ctx = ServeContext(app=app, config=config, multithread=False, multiprocess=False, stop=NeverSet())
    ours, theirs = socket.socketpair()
    http = HTTPConnection(ours, config)
    base = connection_environ(("127.0.0.1", 8000), ("127.0.0.1", 40000), "lab", False, False)
    for _ in range(requests):
        theirs.sendall(REQUEST)
        head = http.next_request(config.timeout)
        assert head is not None
        assert serve_request(http, head, base, ctx, "-", lambda: False) and http.start_next_cycle()
        response = theirs.recv(65536)
        assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"ok"), response
    ours.close()
    theirs.close()


def instructions(requests: int, parser: str) -> int:
    """Ir of one ``--serve`` run under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        command += [
            sys.executable,
            "-m",
            "tests.callgrind_core",
            "--serve",
            str(requests),
            "--parser",
            parser,
        ]
        subprocess.run(command, check=True, capture_output=True)
        with open(out) as f:
            totals = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.MULTILINE)
    assert totals is not None, "callgrind wrote no totals"
    return int(totals[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parser", default="auto", choices=["auto", "h11", "httptools"])
    parser.add_argument("--serve", type=int, metavar="N", help="serve N requests (run under valgrind)")
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.parser)
        return 0
    low, high = (instructions(n, args.parser) for n in COUNTS)
    per_request = (high - low) / (COUNTS[1] - COUNTS[0])
    counts = f"{low} Ir at {COUNTS[0]} requests, {high} at {COUNTS[1]}"
    print(f"parser={args.parser}: {per_request / 1000:.0f}k instructions/request ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
