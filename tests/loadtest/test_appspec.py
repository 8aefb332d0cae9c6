"""App specs as gunicorn takes them: each form parsed, loaded, and each bad one refused in one line."""

from __future__ import annotations

import sys

import pytest

from loadtest.registry.appspec import AppSpec, AppSpecError

PROJECT = {
    "teamapp.py": (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'app']\n"
        "def create_app(name='default', debug=True):\n"
        "    def made(environ, start_response):\n"
        "        start_response('200 OK', [])\n"
        "        return [f'{name} {debug}'.encode()]\n"
        "    return made\n"
        "def broken():\n"
        "    raise RuntimeError('no DATABASE_URL')\n"
        "not_callable = 3\n"
    ),
    "onlyapplication.py": "from teamapp import app as application\nfrom teamapp import broken as app\n",
    "onlyapp.py": "from teamapp import app\n",
    "mysite/__init__.py": "",
    "mysite/wsgi.py": "from teamapp import app as application\n",
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name, text in PROJECT.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("teamapp", "onlyapplication", "onlyapp", "mysite", "mysite.wsgi"):
        sys.modules.pop(name, None)


def body(app) -> str:
    return b"".join(app({}, lambda status, headers: None)).decode()


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("teamapp:app", "app"),
        ("teamapp:create_app()", "default True"),
        ("teamapp:create_app('x', debug=False)", "x False"),
        ("onlyapplication", "app"),  # application first, as gunicorn
        ("onlyapp", "app"),  # then app
        ("mysite.wsgi", "app"),
        ("mysite.wsgi:application", "app"),
    ],
)
def test_each_form_loads_the_app_it_names(project, text, answer):
    assert body(AppSpec.parse(text).load()) == answer


def test_the_factory_call_is_parsed_not_evaluated():
    spec = AppSpec.parse("pkg.mod:make('x', 2, debug=False, opts={'a': [1]})")
    assert (spec.module, spec.attr, spec.called) == ("pkg.mod", "make", True)
    assert spec.args == ("x", 2) and dict(spec.kwargs) == {"debug": False, "opts": {"a": [1]}}
    assert spec.canonical() == "pkg.mod:make('x', 2, debug=False, opts={'a': [1]})"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("teamapp:create_app(__import__('os').getcwd())", "literals"),
        ("teamapp:create_app(name)", "literals"),
        ("teamapp:create_app(**opts)", "literals"),
        ("teamapp:create_app(", "not valid Python"),
        ("teamapp:app.x", "not an attribute name"),
        ("team-app:app", "not a module name"),
        (":app", "not a module name"),
        ("teamapp:", "not an attribute name"),
    ],
)
def test_a_bad_spec_is_refused_before_anything_imports(text, named):
    with pytest.raises(AppSpecError, match=named):
        AppSpec.parse(text)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("teamapp:broken()", "the factory raised RuntimeError: no DATABASE_URL"),
        ("teamapp:nothing", "has no attribute 'nothing'"),
        ("teamapp:not_callable", "not a WSGI callable"),
        ("no_such_team_module:app", "cannot import 'no_such_team_module'"),
    ],
)
def test_an_app_that_cannot_be_had_is_one_line(project, text, named):
    with pytest.raises(AppSpecError, match=named) as caught:
        AppSpec.parse(text).load()
    assert "\n" not in str(caught.value)


def test_the_demo_has_its_own_name_and_app_app_is_a_module():
    assert AppSpec.parse("demo").demo
    team = AppSpec.parse("app:app")
    assert not team.demo and (team.module, team.attr) == ("app", "app")


def test_each_server_gets_the_form_it_takes():
    factory, with_args = AppSpec.parse("m:make()"), AppSpec.parse("m:make('x')")
    assert factory.server_form("gunicorn") == ["m:make()"]
    assert factory.server_form("granian") == ["--factory", "m:make"]
    assert factory.server_form("waitress") == ["--call", "m:make"]
    assert factory.server_form("uwsgi") == ["m:make()"]
    assert factory.server_form("flask-dev") is None  # served through the wrapper, which calls it
    assert with_args.server_form("gunicorn") == ["m:make('x')"] and with_args.server_form("granian") is None
    assert AppSpec.parse("mysite.wsgi:application").server_form("uwsgi") == ["mysite.wsgi:application"]
    assert AppSpec.parse("mysite.wsgi").server_form("gunicorn") is None  # it may be app, not application
