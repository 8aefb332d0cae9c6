"""Where tune's candidates run (``--runtime``): the session's target runner, and the clean-up after it.

- ``local``: ``LocalRunner``, each candidate a process tree pinned to the budget's cores.
- ``docker``: ``ContainerRunner``, each candidate in its own container from the
  project's image (built when its inputs changed) or ``--image``, under ``--cpus``
  as a CPU quota and ``--memory`` as its memory limit; the working directory (where
  ``--app`` imports from) is mounted for an app that is not the demo one. Every
  container of the run carries the run's label and is removed when the run ends,
  however it ends (Ctrl-C included).

What this module does not know: what is measured with the runner.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from loadtest.registry import targets
from loadtest.run.local import LocalRunner
from loadtest.run.runner import RunnerFactory
from loadtest.tune.settings import MiB, Settings


class RuntimeUnavailable(Exception):
    """The runtime cannot run candidates (no engine, the image cannot be built): one line for the user."""


@contextlib.contextmanager
def runners(args: Settings, say: Callable[[str], None]) -> Iterator[RunnerFactory]:
    """The runner factory ``args.runtime`` asks for; RuntimeUnavailable if it cannot be had."""
    if args.runtime == "local":
        yield LocalRunner
        return
    from loadtest.run import engine, image  # the docker SDK only when it is asked for
    from loadtest.run.container import Box, ContainerRunner

    try:
        client = engine.connect()
        chosen = image.user_image(client, args.image) if args.image else image.project_image(client, say)
    except engine.EngineError as exc:
        raise RuntimeUnavailable(f"--runtime docker: {exc}") from None
    box = Box(
        image=chosen,
        cpus=args.budget.cpus,
        memory_bytes=int(args.budget.memory_bytes),
        run_id=uuid.uuid4().hex[:12],
        app_dir=None if args.app == targets.OUR_APP else Path.cwd(),
    )
    say(
        f"runtime docker: each candidate in its own container from {chosen}, CPU quota {box.cpus:g} "
        f"core(s), memory limit {box.memory_bytes / MiB:.0f} MiB; label {engine.RUN_LABEL}={box.run_id}"
    )
    try:
        yield functools.partial(ContainerRunner, box=box, client=client)
    finally:
        removed = engine.remove_labelled(client, box.run_id)
        if removed:
            say(f"removed {removed} container(s) left by this run")
        client.close()
