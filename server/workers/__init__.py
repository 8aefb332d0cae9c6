"""The concurrency models, one module each -- the only place with threads or ``os.fork``.

Every model fills in the hooks of :class:`server.base.BaseServer` (each states its contract); the
list of models is docs/architecture.md.  A new model is a new module here and one line in :data:`MODELS`.
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
