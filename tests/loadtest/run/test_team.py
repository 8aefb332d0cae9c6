"""A team's project: their app:app and server modules win, the shim runs on the stdlib alone, --env
and --env-file reach the app, and a venv without a server is said before anything is measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.inserver import procfs
from loadtest.registry import targets
from loadtest.run import shim, team
from loadtest.run.local import LocalRunner
from loadtest.run.runner import Launch

TEAM_APP = (
    "import os, server\n"
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    '    return [f\'team {server.NAME} {os.environ.get("GREETING", "-")}\'.encode()]\n'
    "def create_app(fail=False):\n"
    "    if fail:\n"
    "        raise RuntimeError('SECRET_KEY is unset')\n"
    "    return app\n"
)


@pytest.fixture
def project(tmp_path) -> Path:
    """A team's directory with the two names ours has: app.py and server.py."""
    root = tmp_path / "team"
    root.mkdir()
    (root / "app.py").write_text(TEAM_APP)
    (root / "server.py").write_text("NAME = 'their-server'\n")
    return root


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory) -> Path:
    """A real virtualenv with nothing installed: no psutil, no server."""
    venv = tmp_path_factory.mktemp("venvs") / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


def test_the_staged_shim_serves_the_teams_app_on_the_stdlib_alone(project, bare_venv, tmp_path):
    staged = shim.stage(tmp_path / "shim")
    code = (
        f"import json, {staged.package}.inserver.byo as byo, {staged.package}.inserver.usage as usage;"
        "seen = {};"
        "body = b''.join(byo.app({'PATH_INFO': '/', 'REQUEST_METHOD': 'GET'}, lambda s, h: seen.update(h)));"
        "print(json.dumps([body.decode(), sorted(seen), usage.snapshot()['cpu_s'], usage.psutil.__name__]))"
    )
    env = {"PYTHONPATH": f"{project}:{staged.directory}", "LAB_BYO_APP": "app:app", "GREETING": "hi"}
    done = subprocess.run(
        [str(bare_venv / "bin" / "python"), "-c", code], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    body, headers, cpu_s, psutil_name = json.loads(done.stdout)
    assert body == "team their-server hi"  # their app and their server module, not ours
    assert "X-Worker-Pid" in headers and cpu_s > 0
    assert psutil_name.endswith("inserver.procfs")


def test_procfs_reads_what_psutil_reads():
    import psutil

    ours, theirs = procfs.Process(), psutil.Process()
    assert ours.cmdline() == theirs.cmdline() and ours.parent().pid == theirs.parent().pid
    assert abs(ours.create_time() - theirs.create_time()) < 1.0
    assert abs(sum(ours.cpu_times()[:2]) - sum(theirs.cpu_times()[:2])) < 0.5
    assert ours.memory_full_info().pss and abs(ours.memory_info().rss - theirs.memory_info().rss) < 2**24


def test_app_app_in_a_team_directory_is_the_teams_served_locally(project, tmp_path):
    launch = Launch(
        name="gunicorn-sync",
        target=targets.TARGETS["gunicorn-sync"].with_args("--workers 1"),
        log_dir=tmp_path / "logs",
        app="app:app",
        cwd=project,
        env={"GREETING": "from-env"},
        shim=shim.staged(),
    )
    assert launch.byo and launch.served_app.startswith("wsgilab_shim_")
    import urllib.request

    with LocalRunner(launch) as runner:
        runner.start()
        assert runner.wait_ready(30), runner.problem + runner.stderr_tail()
        with urllib.request.urlopen(runner.url + "/") as answer:
            assert answer.read() == b"team their-server from-env"


def test_env_file_and_env_reach_the_app_check(project, tmp_path):
    (tmp_path / ".env").write_text("GREETING=from-file\nSECRET_KEY='s3cret'\n# a comment\n")
    settings = team.team_from("app:create_app()", project, ["GREETING=over"], tmp_path / ".env", None)
    assert settings.env == {"GREETING": "over", "SECRET_KEY": "s3cret"}
    team.check_app(settings, shim.staged())  # imports and calls the factory: no error


def test_a_factory_that_raises_is_one_line_naming_it(project):
    settings = team.team_from("app:create_app(fail=True)", project, [], None, None)
    with pytest.raises(team.TeamError) as caught:
        team.check_app(settings, shim.staged())
    assert str(caught.value) == (
        "--app app:create_app(fail=True): the factory raised RuntimeError: SECRET_KEY is unset"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("app:create_app(open('x'))", None, [], None, None), "literals"),
        (("app:app", Path("/no/such/dir"), [], None, None), "--chdir /no/such/dir: not a directory"),
        (("app:app", None, ["NOEQUALS"], None, None), "--env: expected KEY=VALUE"),
        (("app:app", None, [], Path("/no/such.env"), None), "--env-file /no/such.env: no such file"),
        (("app:app", None, [], None, Path("/no/venv")), "--venv /no/venv: no executable"),
    ],
)
def test_bad_settings_are_one_line(args, named):
    with pytest.raises(team.TeamError, match=named):
        team.team_from(*args)


def test_a_venv_without_a_server_is_one_line(bare_venv):
    settings = team.team_from("app:app", None, [], None, bare_venv)
    with pytest.raises(
        team.TeamError, match=r"none of the servers is installed there .*pip install gunicorn=="
    ):
        team.servers_in_venv(settings, ["gunicorn-sync", "waitress"], print)


def test_a_venv_with_only_flask_runs_the_dev_server_and_says_how_to_add_the_rest(tmp_path_factory):
    venv = tmp_path_factory.mktemp("venvs") / "flaskonly"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    import flask
    import werkzeug

    for module in (flask, werkzeug):  # Flask's packages alone, not the site-packages beside them
        (site / module.__name__).symlink_to(Path(module.__file__).parent)
    said: list[str] = []
    settings = team.team_from("app:app", None, [], None, venv)
    kept = team.servers_in_venv(settings, ["flask-dev", "gunicorn-gevent", "waitress"], said.append)
    assert kept == ["flask-dev"]
    assert said[0].startswith(
        f"skipped gunicorn-gevent: not installed in {venv} ({venv}/bin/pip install gunicorn=="
    )
    assert "gevent==" in said[0] and said[1].endswith(f"pip install waitress=={_version('waitress')})")


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


def test_a_lone_module_is_resolved_to_the_attribute_it_has(project):
    """``--app app``: the check says which name it found, so the deploy command names app:app."""
    checked = team.check_app(team.team_from("app", project, [], None, None), shim.staged())
    assert (checked.module, checked.attr, str(checked)) == ("app", "app", "app")
    assert checked.server_form("gunicorn") == ["app:app"]
