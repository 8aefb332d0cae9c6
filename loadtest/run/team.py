"""A team's project as the runner meets it: the app spec, its directory, environment and interpreter.

Checked before any measurement, each failure one line (``TeamError``):

- ``--env KEY=VALUE`` (repeatable) over ``--env-file FILE`` (dotenv, read with
  python-dotenv): the variables every candidate, the calibration and the app check get.
  Values stay here: deploy files only name the file.
- ``--chdir DIR``: where the app imports from (default: the current directory).
- ``--venv PATH``: the team's interpreter; which servers it has is asked of it
  (``missing_servers``), and one it lacks is skipped with the line that installs it.
- ``check_app``: the spec imported -- and a factory called -- by that interpreter, in that
  directory, with that environment, through the staged shim (``shim.py``), as a candidate will.

What this module does not know: which command asks, or what is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

from dotenv import dotenv_values

from loadtest.registry import targets
from loadtest.registry.appspec import AppSpec, AppSpecError
from loadtest.run.shim import Shim

CHECK_TIMEOUT_S = 60
# The module each kind of server needs in the interpreter that runs it, and the distribution that has it.
NEEDS: dict[str, tuple[str, str]] = {
    "gunicorn": ("gunicorn", "gunicorn"),
    "waitress": ("waitress", "waitress"),
    "granian": ("granian", "granian"),
    "uwsgi": ("pyuwsgi", "pyuwsgi"),
    "flask-dev": ("werkzeug", "Werkzeug"),
    "lab": ("h11", "h11"),  # our own server: python -m server from the project, on h11 (httptools optional)
}
GEVENT = ("gevent", "gevent")  # gunicorn -k gevent's worker


class TeamError(ValueError):
    """A project setting that cannot work: one line naming the problem."""


@dataclass(frozen=True)
class Team:
    """What a candidate of a team's project runs with (the demo app: the defaults)."""

    app: AppSpec = field(default_factory=lambda: AppSpec.parse(targets.OUR_APP))
    chdir: Path | None = None  # None: the current directory
    env: Mapping[str, str] = field(default_factory=dict)  # --env-file's, then --env's over them
    env_file: Path | None = None
    venv: Path | None = None

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python" if self.venv else Path(sys.executable)

    @property
    def cwd(self) -> Path:
        return self.chdir or Path.cwd()


def env_items(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
            raise TeamError(f"--env: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def env_file(path: Path) -> dict[str, str]:
    """The variables of a dotenv file; a variable without a value (``KEY`` alone) is an error."""
    if not path.is_file():
        raise TeamError(f"--env-file {path}: no such file")
    values = dotenv_values(path, interpolate=False)
    empty = [k for k, v in values.items() if v is None]
    if empty:
        raise TeamError(f"--env-file {path}: {empty[0]} has no value (expected KEY=VALUE)")
    return {k: v for k, v in values.items() if v is not None}


def team_from(
    app: str, chdir: Path | None, env: Iterable[str], env_path: Path | None, venv: Path | None
) -> Team:
    """The checked settings (TeamError for the first that cannot work); the app is not imported yet."""
    try:
        spec = AppSpec.parse(app)
    except AppSpecError as exc:
        raise TeamError(f"--{exc}") from None
    if chdir is not None and not chdir.is_dir():
        raise TeamError(f"--chdir {chdir}: not a directory")
    if venv is not None and not os.access(venv / "bin" / "python", os.X_OK):
        raise TeamError(f"--venv {venv}: no executable {venv / 'bin' / 'python'}")
    values = {**(env_file(env_path) if env_path else {}), **env_items(env)}
    return Team(
        spec,
        chdir.resolve() if chdir else None,
        values,
        env_path.resolve() if env_path else None,
        venv.absolute() if venv else None,
    )


def check_app(team: Team, shim: Shim) -> AppSpec:
    """Import the app (and call its factory) as a candidate will: the spec with a lone module's
    attribute found (``application`` or ``app``); TeamError with the app's own last line."""
    if team.app.demo:
        return team.app
    code = (
        "import sys; from importlib import import_module; "
        f"spec = import_module('{shim.package}.registry.appspec').AppSpec.parse(sys.argv[1]); "
        "spec.load(); print(spec.resolved().attr)"
    )
    done = subprocess.run(
        [str(team.python), "-c", code, str(team.app)],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
        env=child_env(team, shim),
        cwd=team.cwd,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit {done.returncode}"
        _, _, why = last.partition("AppSpecError: ")
        why = (why or last).removeprefix(f"app {team.app}: ")
        raise TeamError(f"--app {team.app}: {why}")
    found = done.stdout.strip().splitlines()
    return replace(team.app, attr=found[-1]) if team.app.attr is None and found else team.app


def child_env(team: Team, shim: Shim) -> dict[str, str]:
    """This process's environment, the team's over it, the app's directory and the shim first on the path."""
    env = {**os.environ, **team.env}
    paths = [str(team.cwd), str(shim.directory), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def needs(target: targets.Target) -> list[tuple[str, str]]:
    """(module, distribution) pairs ``target`` needs in its interpreter."""
    wanted = [NEEDS[target.kind]]
    if target.kind == "gunicorn" and "gevent" in target.args:
        wanted.append(GEVENT)
    return wanted


def missing_servers(team: Team, names: Iterable[str]) -> dict[str, str]:
    """Target name -> the line that installs what it lacks in ``team.venv`` (none without a venv)."""
    chosen = [targets.TARGETS[n] for n in names]
    if team.venv is None:
        return {}
    modules = sorted({module for t in chosen for module, _ in needs(t)})
    code = (
        "import importlib.util, json, sys;"
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m)]))"
    )
    done = subprocess.run(
        [str(team.python), "-I", "-c", code, *modules],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise TeamError(f"--venv {team.venv}: its python failed: {done.stderr.strip().splitlines()[-1:]}")
    present = set(json.loads(done.stdout))
    missing: dict[str, str] = {}
    for target in chosen:
        lacking = [dist for module, dist in needs(target) if module not in present]
        if lacking:
            missing[target.name] = f"{team.venv}/bin/pip install " + " ".join(pinned(d) for d in lacking)
    return missing


def pinned(distribution: str) -> str:
    """``name==version`` as this project runs it (the version installed here), else the bare name."""
    try:
        return f"{distribution}=={metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return distribution


def servers_in_venv(team: Team, names: list[str], say) -> list[str]:
    """The targets the venv can run; each skipped one said with its install line; TeamError if none."""
    missing = missing_servers(team, names)
    kept = [n for n in names if n not in missing]
    if not kept:
        raise TeamError(
            f"--venv {team.venv}: none of the servers is installed there "
            f"(e.g. {team.venv}/bin/pip install {pinned('gunicorn')})"
        )
    for name, line in missing.items():
        say(f"skipped {name}: not installed in {team.venv} ({line})")
    return kept
