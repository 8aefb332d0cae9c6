"""The demo app with extra CPU work per request: a deliberately slowed build for ``make bench``'s diff.

``python -m loadtest.bench --app app.slowed:app`` serves this instead of
``app:app``.  Every request first spins for ``LAB_SLOW_US`` microseconds
(default 100) of CPU -- a busy loop, not a sleep, so CPU per request grows as
it would with slower server code.  The server itself is untouched: nothing in
its hot path knows about this.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from app import app as demo_app

EXTRA_SECONDS = float(os.environ.get("LAB_SLOW_US", "100")) / 1e6


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    end = time.perf_counter() + EXTRA_SECONDS
    while time.perf_counter() < end:
        pass
    return demo_app(environ, start_response)
