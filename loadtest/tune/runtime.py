"""Where tune's candidates run (``--runtime``): the session's target runner, and the clean-up after it.

- ``local``: ``LocalRunner``, each candidate a process tree pinned to the budget's cores.
- ``docker``: ``ContainerRunner``, each candidate in its own container from the
  project's image (built when its inputs changed) or the team's ``--image`` (the
  servers it lacks installed in a derived image: ``run/teamimage.py``), under ``--cpus``
  as a CPU quota and ``--memory`` as its memory limit; the app's directory
  (``--chdir``, where ``--app`` imports from) and the staged shim are mounted for an app
  that is not the demo one, and every container runs as the invoking uid. Every
  container of the run carries the run's label and is removed when the run ends,
  however it ends (Ctrl-C included). What was added to the team's image is said and
  kept in ``added`` for the page.

What this module does not know: what is measured with the runner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import uuid
from collections.abc import Callable, Iterator

from loadtest.registry.paths import PROJECT_ROOT
from loadtest.run.local import LocalRunner
from loadtest.run.runner import RunnerFactory
from loadtest.run.shim import staged
from loadtest.tune.candidates import BASELINE_TARGET
from loadtest.tune.settings import MiB, Settings


class RuntimeUnavailable(Exception):
    """The runtime cannot run candidates (no engine, the image cannot be built): one line for the user."""


@contextlib.contextmanager
def runners(args: Settings, say: Callable[[str], None]) -> Iterator[tuple[RunnerFactory, Settings]]:
    """The runner factory ``args.runtime`` asks for, and the settings as it leaves them (servers a
    team's image cannot run dropped, what was added to it named); RuntimeUnavailable if it cannot be had."""
    if args.runtime == "local":
        yield LocalRunner, args
        return
    from loadtest.run import engine, image, teamimage  # the docker SDK only when it is asked for
    from loadtest.run.container import Box, ContainerRunner

    team = args.team
    try:
        client = engine.connect()
        if args.image:
            # calibration and the baseline run gunicorn sync, whatever --servers names
            names = list(dict.fromkeys([BASELINE_TARGET, *args.servers]))
            prepared = teamimage.prepare(client, image.user_image(client, args.image), names, say)
        else:
            prepared = teamimage.Prepared(image.project_image(client, say))
    except engine.EngineError as exc:
        raise RuntimeUnavailable(f"--runtime docker: {exc}") from None
    for name, line in prepared.skipped.items():
        say(f"skipped {name}: its server is not in {args.image} ({line})")
    if not team.app.demo:
        prepared.added.append(f"the identity wrapper, staged as {staged().package}, mounted read-only")
    args = dataclasses.replace(
        args,
        servers=[n for n in args.servers if n not in prepared.skipped],
        image_added=tuple(prepared.added),
    )
    for line in prepared.added:
        say(f"added to the image: {line}")
    box = Box(
        image=prepared.image,
        cpus=args.budget.cpus,
        memory_bytes=int(args.budget.memory_bytes),
        run_id=uuid.uuid4().hex[:12],
        app_dir=None if team.app.demo else team.cwd,
        shim=None if team.app.demo else staged(),
        project_dir=PROJECT_ROOT if args.image else None,
    )
    say(
        f"runtime docker: each candidate in its own container from {prepared.image} as uid {Box.user()}, "
        f"CPU quota {box.cpus:g} core(s), memory limit {box.memory_bytes / MiB:.0f} MiB; "
        f"label {engine.RUN_LABEL}={box.run_id}"
    )
    try:
        yield functools.partial(ContainerRunner, box=box, client=client), args
    finally:
        removed = engine.remove_labelled(client, box.run_id)
        if removed:
            say(f"removed {removed} container(s) left by this run")
        client.close()
