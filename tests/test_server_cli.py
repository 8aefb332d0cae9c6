"""The server's command line: flags, LAB_* variables, one-line errors with exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from server.cli import OPTIONS, load_config
from server.config import Config
from tests.support import ROOT


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


BAD_FLAGS = [
    ("--mode", "pooled"),
    ("--bind", "localhost"),
    ("--bind", "127.0.0.1:99999"),
    ("--backlog", "0"),
    ("--timeout", "soon"),
    ("--timeout", "0"),
    ("--keep-alive", "-1"),
    ("--graceful-timeout", "nan"),
    ("--max-children", "0"),
    ("--max-threads", "many"),
    ("--limit-request-line", "5"),
    ("--limit-request-fields", "0"),
    ("--limit-request-field-size", "x"),
    ("--limit-request-body", "-5"),
    ("--log-level", "loud"),
    ("--workers", "0"),
    ("--threads", "none"),
    ("--max-requests", "-1"),
    ("--max-requests-jitter", "x"),
    ("--max-connections", "0"),
]


@pytest.mark.parametrize(("flag", "value"), BAD_FLAGS)
def test_bad_flag_value_is_one_line_and_exit_2(flag, value):
    result = run(flag, value, "app:app")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], result.stderr


@pytest.mark.parametrize(("flag", "value"), BAD_FLAGS[:6])
def test_bad_env_value_names_the_variable(flag, value):
    env_name = "LAB_" + flag.lstrip("-").upper().replace("-", "_")
    result = run("app:app", env={env_name: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and env_name in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "no application"),
        (("not an app",), "MODULE:ATTRIBUTE"),
        (("--no-such-flag", "app:app"), "--no-such-flag"),
        (("no_such_module:app",), "no_such_module"),
        (("app:missing",), "missing"),
    ],
)
def test_other_mistakes_are_one_line_too(args, expected):
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--mode", "threaded", "--workers", "4"), {}, "--workers"),
        (("--mode", "forking", "--max-requests", "10"), {}, "--max-requests"),
        (("--mode", "threaded", "--threads", "4"), {}, "--threads"),
        (("--workers", "4"), {"LAB_MODE": "single"}, "--workers"),
    ],
)
def test_an_option_the_model_would_ignore_is_refused(args, env, named):
    result = run(*args, "app:app", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "prefork" in lines[0], result.stderr


@pytest.mark.parametrize(("argv", "env"), [(["-w", "4", "x:y"], {}), (["x:y"], {"LAB_WORKERS": "4"})])
def test_workers_alone_means_prefork_as_in_gunicorn(argv, env):
    config = load_config(argv, env)
    assert (config.mode, config.workers) == ("prefork", 4)


def test_prefork_options_from_flags_and_env():
    argv = ["--mode", "prefork", "-w", "3", "--max-requests", "100", "x:y"]
    config = load_config(argv, {"LAB_THREADS": "2"})
    assert (config.workers, config.threads, config.max_requests, config.max_requests_jitter) == (3, 2, 100, 0)
    assert load_config(["x:y"], {"LAB_MODE": "prefork", "LAB_WORKERS": "5"}).workers == 5
    assert Config().threads is None  # the model's default: 1 in prefork


def test_port_in_use_is_reported():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run("--bind", f"127.0.0.1:{taken.getsockname()[1]}", "app:app")
    assert result.returncode == 1 and "cannot listen" in result.stderr


def test_help_documents_every_flag_and_variable():
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in OPTIONS:
        assert option.flag in text and option.env in text
    assert "LAB_APP" in text


def test_flags_override_env_which_overrides_defaults():
    env = {"LAB_MODE": "forking", "LAB_TIMEOUT": "7", "LAB_APP": "app:app", "LAB_ACCESS_LOG": "-"}
    config = load_config(["--mode", "single", "--max-threads", "3"], env)
    assert config.mode == "single"  # flag beats env
    assert config.timeout == 7.0  # env beats default
    assert config.max_threads == 3 and config.app == "app:app" and config.access_log == "-"
    assert config.keep_alive == Config().keep_alive
    assert load_config(["-b", ":0", "x:y"], {}).bind == ("0.0.0.0", 0)
    assert load_config(["-b", "[::1]:80", "x:y"], {}).bind == ("::1", 80)


def test_server_software_names_the_mode():
    assert Config(mode="threaded").server_software == "wsgi-lab/0.1.0 threaded"
