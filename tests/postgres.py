"""A throwaway PostgreSQL cluster for the pool app's tests and measurements (Debian's ``postgresql``).

``cluster()`` runs ``initdb`` and ``pg_ctl start`` from ``/usr/lib/postgresql/<v>/bin`` in a new
folder under the system's temporary directory (as the ``postgres`` user when this runs as root:
initdb refuses root; pytest's own temporary folders are private to root), listening on
127.0.0.1 at a free port and on a unix socket in that folder, trust authentication, and
``max_connections`` as given; it stops the cluster and removes the folder on the way out. A
fresh cluster each time, so starting is idempotent. ``python -m tests.postgres [MAX_CONNECTIONS]``
starts one and prints its DSN until interrupted (for the measurements in docs/measurements).

``.ci/run`` installs the package when it is missing and sets ``REQUIRE_POSTGRES=1``: the tests
then fail instead of skipping when no PostgreSQL is found.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port

REQUIRE_ENV = "REQUIRE_POSTGRES"
ROOT_USER = "postgres"  # who runs the cluster when the tests run as root


def bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` holding initdb and pg_ctl (None: not installed)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", ROOT_USER, "--", *argv]


@contextmanager
def cluster(max_connections: int = 20) -> Iterator[str]:
    """Start a cluster; yields its DSN (host 127.0.0.1, user postgres, db postgres)."""
    bin_ = bindir()
    if bin_ is None:
        raise RuntimeError("no PostgreSQL here (apt-get install -y postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="wsgi-lab-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam(ROOT_USER)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    port = free_port()
    quiet = {"capture_output": True, "text": True, "timeout": 120}
    subprocess.run(
        as_owner([str(bin_ / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True, **quiet,
    )  # fmt: skip
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
        f"-c max_connections={max_connections} -c fsync=off"
    )
    log = folder / "postgres.log"
    started = subprocess.run(
        as_owner([str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]),
        **quiet,
    )
    if started.returncode != 0:
        raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip() or started.stdout.strip()}")
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run(as_owner([str(bin_ / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), **quiet)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    connections = int(argv[0]) if argv else 20
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the cluster too
    with cluster(connections) as dsn:
        print(dsn, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
