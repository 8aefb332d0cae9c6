"""The concurrency models, one module each -- the only place with threads or ``os.fork``.

Every model answers the same questions through the hooks of
:class:`server.base.BaseServer` (each hook states its contract): what to do
with an accepted connection, whether another may be accepted now, what is
still in flight at shutdown, what to do with its own signals.  The HTTP and
WSGI work is identical in all: :func:`server.connection.serve_connection`.

- ``single``   -- :class:`SingleServer`: one connection at a time, in the main thread
- ``threaded`` -- :class:`ThreadedServer`: a thread per connection (``threading.Thread``)
- ``forking``  -- :class:`ForkingServer`: a child per connection (``os.fork`` in ``handle``)
- ``event``    -- :class:`EventServer`: one selector loop owns every connection; a pool runs requests
- ``prefork``  -- :class:`PreforkServer`: N workers forked at start (``os.fork`` in
  ``arbiter.Arbiter.spawn``); each runs the single or threaded model on the shared listener

A new model is a new module here and one line in :data:`MODELS`.
"""

from __future__ import annotations

from server.base import BaseServer
from server.workers.event import EventServer
from server.workers.forking import ForkingServer
from server.workers.prefork import PreforkServer
from server.workers.single import SingleServer
from server.workers.threaded import ThreadedServer

MODELS: dict[str, type[BaseServer]] = {
    "single": SingleServer,
    "threaded": ThreadedServer,
    "forking": ForkingServer,
    "prefork": PreforkServer,
    "event": EventServer,
}
