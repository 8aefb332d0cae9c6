"""The prefork heartbeat: shared memory where each worker says since when its oldest request runs.

Its own module because two others share it: the workers write it
(:mod:`server.workers.prefork`) and the master's arbiter reads it
(:mod:`server.workers.arbiter`), as gunicorn's ``workertmp.py`` sits between
its workers and its arbiter.  It knows nothing of sockets, signals or forking:
it is made before the fork and inherited.
"""

from __future__ import annotations

import mmap
import struct

MAX_WORKERS = 256  # slots on the heartbeat board; SIGTTIN stops there
_SLOT = struct.Struct("d")


class HeartbeatBoard:
    """Shared memory, one slot per worker: when its oldest running request started (0 = idle).

    An anonymous shared mapping made before the fork, so the master reads what
    the workers write without a system call; ``time.monotonic`` is system-wide.
    """

    def __init__(self, slots: int = MAX_WORKERS) -> None:
        self._map = mmap.mmap(-1, _SLOT.size * slots)

    def set(self, slot: int, since: float) -> None:
        """Runs in a worker: ``since`` is the start of its oldest running request, 0 when idle."""
        _SLOT.pack_into(self._map, slot * _SLOT.size, since)

    def busy_since(self, slot: int) -> float:
        """Runs in the master: what the worker on ``slot`` last wrote."""
        return _SLOT.unpack_from(self._map, slot * _SLOT.size)[0]
