"""Tune's flags for a team's own project, and their checks: one place the CLI adds and reads them.

``--app`` (any spec gunicorn takes; default the demo), ``--chdir``, ``--env`` and
``--env-file``, ``--venv``: checked (``loadtest/run/team.py``) and the app imported -- a
factory called -- in the team's interpreter, directory and environment, before calibration.
With ``--venv`` the servers it lacks are dropped from the search, each said with the line
that installs it. With ``--runtime docker`` the mounted directory must be readable by the
uid the containers run as (``run/teamimage.py``).

What this module does not know: what is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

from loadtest.registry import targets
from loadtest.run import team as teams
from loadtest.run.shim import staged
from loadtest.tune.candidates import BASELINE_TARGET


class ProjectError(ValueError):
    """One line for the user, exit 2."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--app",
        default=targets.OUR_APP,
        help="your app as gunicorn takes it: module:app, 'module:create_app()', module alone "
        "(its application, else app); default: demo, wsgi-lab's own demo app",
    )
    p.add_argument("--chdir", type=Path, default=None, help="where the app imports from (default: here)")
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a variable for the app (repeatable)"
    )
    p.add_argument(
        "--env-file", type=Path, default=None, help="a dotenv file of variables for the app (--env wins)"
    )
    p.add_argument(
        "--venv",
        type=Path,
        default=None,
        help="run the candidates with this virtualenv's python and packages (yours; servers it lacks are "
        "skipped with the line that installs them)",
    )


def team_from(ns: argparse.Namespace, servers: list[str], say: Callable[[str], None]) -> tuple:
    """(Team, the servers it can run); ProjectError for what cannot work, before calibration."""
    try:
        team = teams.team_from(ns.app, ns.chdir, ns.env, ns.env_file, ns.venv)
        if ns.runtime == "local":  # in a container: check_in_image
            missing = teams.missing_servers(team, [BASELINE_TARGET])
            if missing:  # calibration and the baseline run gunicorn: nothing is measured without it
                raise ProjectError(
                    f"--venv {team.venv}: tune calibrates with gunicorn and measures its baseline; "
                    f"{missing[BASELINE_TARGET]}"
                )
            servers = teams.servers_in_venv(team, servers, say)
            team = dataclasses.replace(team, app=teams.check_app(team, staged()))
    except teams.TeamError as exc:
        raise ProjectError(str(exc)) from None
    return team, servers


def check_in_image(team: teams.Team, image: str | None) -> teams.Team:
    """--runtime docker: the app's directory readable by the uid every container runs as, then the
    app imported (a factory called) in a container of ``image``, as a candidate will."""
    if team.app.demo:
        return team
    from loadtest.run import engine, teamimage  # the docker SDK only when it is asked for
    from loadtest.run import image as images
    from loadtest.run.container import APP_MOUNT, SHIM_MOUNT, Box

    client = engine.connect()
    image = image or images.project_image(client, lambda line: print(f"[tune] {line}", flush=True))
    shim = staged()
    code = (
        f"import sys, {shim.package}.registry.appspec as a; s = a.AppSpec.parse(sys.argv[1]); "
        "s.load(); print(s.resolved().attr)"
    )
    try:
        teamimage.check_readable(client, image, team.cwd, Box.user())
        out = teamimage.probe(
            client,
            image,
            ["python", "-c", code, str(team.app)],
            user=Box.user(),
            environment={**team.env, "PYTHONPATH": f"{APP_MOUNT}:{SHIM_MOUNT}"},
            working_dir=APP_MOUNT,
            volumes={
                str(team.cwd): {"bind": APP_MOUNT, "mode": "ro"},
                str(shim.directory): {"bind": SHIM_MOUNT, "mode": "ro"},
            },
        )
    except engine.EngineError as exc:
        why = str(exc).partition("AppSpecError: ")[2].removeprefix(f"app {team.app}: ") or str(exc)
        raise ProjectError(f"--app {team.app} in {image}: {why}") from None
    finally:
        client.close()
    found = out.strip().splitlines()
    attr = found[-1] if found and team.app.attr is None else team.app.attr
    return dataclasses.replace(team, app=dataclasses.replace(team.app, attr=attr))


def record(team: teams.Team, added: list[str], runtime: str = "local") -> dict:
    """What the page and the record say of the project: names and paths, never a variable's value."""
    return {
        "chdir": str(team.cwd),
        "env": sorted(team.env),
        "env_file": str(team.env_file) if team.env_file else None,
        "venv": str(team.venv) if team.venv else None,
        "python": str(team.python) if runtime == "local" else "the image's python",
        "image_added": list(added),
    }


def describe(team: teams.Team, runtime: str = "local") -> str:
    """One line for the run's start: where the app imports from and with what."""
    variables = ", ".join(sorted(team.env)) or "none"
    source = f" (from {team.env_file} and --env)" if team.env_file else ""
    python = f"{team.python} (--venv)" if team.venv else f"{team.python} (wsgi-lab's own)"
    if runtime != "local":
        python = "the image's"
    return f"project: {team.cwd}; python {python}; variables {variables}{source}"
