"""Run the real server with ``os.fork`` failing on chosen calls: a fault a test cannot cause otherwise.

``FAULT_FAIL_FORKS=2,3 python -m tests.fault_launcher --mode forking ... app:app`` makes
the 2nd and 3rd ``os.fork()`` of the process raise ``OSError(EAGAIN)``, as the
kernel does when the process limit is reached (root ignores RLIMIT_NPROC, so the
limit itself cannot be used in a test).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable

from server.cli import main


def failing_fork(fail_on: set[int], real: Callable[[], int] = os.fork) -> Callable[[], int]:
    calls = 0

    def fork() -> int:
        nonlocal calls
        calls += 1
        if calls in fail_on:
            raise OSError(errno.EAGAIN, f"Resource temporarily unavailable (injected, fork #{calls})")
        return real()

    return fork


if __name__ == "__main__":
    os.fork = failing_fork({int(n) for n in os.environ["FAULT_FAIL_FORKS"].split(",")})
    sys.exit(main(sys.argv[1:]))
