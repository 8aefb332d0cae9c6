"""The server's command line: flags, LAB_* variables, one-line errors with exit status 2.

Almost every case is answered in process: ``load_config(argv, environ)`` is what
reads the flags and variables, and ``main(argv)`` what loads the app, so a test
calls them and reads the one line they print.  A few tests run ``python -m
server`` as a user does, to show the same line and exit status end to end.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import pytest

from server import config as config_module
from server.cli import OPTIONS, build_parser, load_config, main, parser_note
from server.config import Config
from tests.support import ROOT

PROG = build_parser().prog


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """``python -m server ARGS`` in a subprocess, with no LAB_* variable but those in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def the_line(stderr: str) -> str:
    """The one line of an error message; fails if there are more."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{PROG}: error: "), lines[0]
    return lines[0]


def refusal(capsys, argv: list[str], environ: dict[str, str] | None = None) -> str:
    """The one line ``load_config`` prints when it refuses ``argv``/``environ`` (exit status 2)."""
    with pytest.raises(SystemExit) as stopped:
        load_config(argv, environ or {})
    assert stopped.value.code == 2
    return the_line(capsys.readouterr().err)


@pytest.fixture
def server_loggers():
    """``main()`` configures the server's loggers as the process it normally owns: put them back."""
    loggers = [logging.getLogger("wsgi_lab"), logging.getLogger("wsgi_lab.access")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate


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
    ("--cpu-affinity", "first"),
    ("--cpu-affinity", "3-1"),
    ("--cpu-affinity", "4096"),  # not a CPU this process may use
    ("--parser", "picohttpparser"),
]


@pytest.mark.parametrize(("flag", "value"), BAD_FLAGS)
def test_bad_flag_value_is_one_line_and_exit_2(capsys, flag, value):
    assert flag in refusal(capsys, [flag, value, "app:app"])


@pytest.mark.parametrize(("flag", "value"), BAD_FLAGS[:6])
def test_bad_env_value_names_the_variable(capsys, flag, value):
    env_name = "LAB_" + flag.lstrip("-").upper().replace("-", "_")
    assert env_name in refusal(capsys, ["app:app"], {env_name: value})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "no application"),
        (("not an app",), "MODULE:ATTRIBUTE"),
        (("--no-such-flag", "app:app"), "--no-such-flag"),
    ],
)
def test_other_mistakes_are_one_line_too(capsys, args, expected):
    assert expected in refusal(capsys, list(args))


@pytest.mark.parametrize(
    ("spec", "expected"), [("no_such_module:app", "no_such_module"), ("app:missing", "missing")]
)
def test_an_app_that_cannot_be_loaded_is_one_line_and_exit_2(
    capsys, monkeypatch, server_loggers, spec, expected
):
    for name in [k for k in os.environ if k.startswith("LAB_")]:
        monkeypatch.delenv(name)
    assert main([spec]) == 2
    line = the_line(capsys.readouterr().err)
    assert expected in line and "cannot load app" in line


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--mode", "threaded", "--workers", "4"), {}, "--workers"),
        (("--mode", "forking", "--max-requests", "10"), {}, "--max-requests"),
        (("--mode", "threaded", "--threads", "4"), {}, "--threads"),
        (("--workers", "4"), {"LAB_MODE": "single"}, "--workers"),
    ],
)
def test_an_option_the_model_would_ignore_is_refused(capsys, args, env, named):
    line = refusal(capsys, [*args, "app:app"], env)
    assert named in line and "prefork" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [(("--timeout", "soon", "app:app"), "--timeout"), (("no_such_module:app",), "no_such_module")],
    ids=["bad flag", "app not found"],
)
def test_end_to_end_a_mistake_is_one_line_on_stderr_and_exit_2(args, expected):
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert expected in the_line(result.stderr)


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
    assert result.returncode == 1 and "cannot listen" in the_line(result.stderr)


def test_help_documents_every_flag_and_variable(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # the width argparse wraps at, as in a pipe
    with pytest.raises(SystemExit) as stopped:
        load_config(["--help"], {})
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
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


def test_parser_from_flag_and_env_and_what_auto_means(monkeypatch):
    assert load_config(["--parser", "h11", "x:y"], {}).parser_in_use == "h11"
    assert load_config(["x:y"], {"LAB_PARSER": "h11"}).parser == "h11"
    assert load_config(["x:y"], {}).parser == "auto"
    monkeypatch.setattr(
        config_module, "HTTPTOOLS", False
    )  # httptools missing: auto is h11, and the start says so
    assert Config().parser_in_use == "h11"
    assert parser_note(Config()).startswith("h11 (httptools is not installed")
    assert parser_note(Config(parser="h11")) == "h11"


def test_httptools_asked_for_but_missing_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(config_module, "HTTPTOOLS", False)
    assert "httptools is not installed" in refusal(capsys, ["--parser", "httptools", "app:app"])


def test_server_software_names_the_mode():
    assert Config(mode="threaded").server_software == "wsgi-lab/0.1.0 threaded"


@pytest.mark.parametrize(("text", "cpus"), [("0", (0,)), (" 0 ", (0,)), ("0,0", (0,)), ("0-0", (0,))])
def test_cpu_affinity_is_read_as_taskset_writes_it(text, cpus):
    assert load_config(["--cpu-affinity", text, "app:app"], {}).cpu_affinity == cpus


def test_cpu_affinity_range_and_list_name_every_cpu():
    available = sorted(os.sched_getaffinity(0))
    last = available[-1]
    if available != list(range(last + 1)):
        pytest.skip(f"this process may use CPUs {available}: not 0..N, as the ranges below assume")
    assert load_config(["--cpu-affinity", f"0-{last}", "app:app"], {}).cpu_affinity == tuple(available)
    listed = load_config(["--cpu-affinity", f"{last},0", "app:app"], {}).cpu_affinity
    assert listed == tuple(sorted({0, last}))
