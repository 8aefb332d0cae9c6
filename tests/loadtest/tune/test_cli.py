"""``python -m loadtest.tune`` from outside: bad input is one line, exit 2; a short real run writes files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from loadtest.registry import targets
from loadtest.run import locustrun
from loadtest.run.local import LocalRunner
from loadtest.run.runner import Launch
from loadtest.tune.candidates import Shape, family
from loadtest.tune.cli import CPUS_ENV, MEMORY_ENV, budget_from
from loadtest.tune.settings import Generator, MiB, Slo
from loadtest.tune.trial import Session, generator_cores, serve_ladder
from tests.support import RECOMMENDATION_KEYS, ROOT, assert_one_line_error, run_module


def tune(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_module("loadtest.tune", *args, timeout=timeout)


def test_unknown_server(tmp_path):
    result = tune("--servers", "gunicorn-sync,gunicron", "--out", str(tmp_path / "x"))
    assert_one_line_error(result, "gunicron", "gunicorn-gthread")  # the culprit and the choices
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("slo", ["p90=100ms", "p95=fast", "p95=200", "p95=-1ms", "95=200ms"])
def test_bad_slo(slo):
    assert_one_line_error(tune("--slo", slo), "SLO", slo)


@pytest.mark.parametrize(
    ("flag", "value", "problem"),
    [("--memory", "lots", "bad size"), ("--memory", "12parsecs", "bad size"), ("--cpus", "0", "above 0"),
     ("--cpus", "999", "at most"), ("--minutes", "0", "0.5 to 240"), ("--path", "no-slash", "bad path"),
     ("--max-error-rate", "150%", "under 100%"), ("--locustfile", "/no/such/file.py", "no locustfile")],
)  # fmt: skip
def test_bad_budget_and_workload(flag, value, problem):
    """The one line names the flag, the value given and what is wrong with it."""
    assert_one_line_error(tune(flag, value), f"argument {flag}:", repr(value), problem)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--runtime", "bogus"], ["--runtime", "bogus", "docker"]),
        (["--cpus", "1.5"], ["--cpus 1.5", "--runtime docker"]),  # the local runtime pins whole cores
        (["--image", "mine:1"], ["--image", "--runtime docker"]),
    ],
)
def test_bad_runtime_flags(args, words):
    assert_one_line_error(tune(*args), *words)


def test_runtime_docker_without_an_engine_is_one_line(tmp_path):
    """No engine where DOCKER_HOST points: exit 2 before anything starts."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.tune", "--runtime", "docker", "--cpus", "1.5",
         "--out", str(tmp_path / "x")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert_one_line_error(result, "--runtime docker", "no Docker engine")
    assert not (tmp_path / "x").exists()


def test_budget_from_the_environment_unless_a_flag_gives_it(monkeypatch):
    """TUNE_CPUS/TUNE_MEMORY (what the compose tune service passes) are defaults, the flags win."""
    monkeypatch.setenv(CPUS_ENV, "1")
    monkeypatch.setenv(MEMORY_ENV, "512MiB")
    b = budget_from(None, None)
    assert (b.cpus, b.cpus_source, b.memory_bytes, b.memory_source) == (1, CPUS_ENV, 512 * MiB, MEMORY_ENV)
    b = budget_from(1, 256 * MiB)
    assert (b.cpus_source, b.memory_bytes, b.memory_source) == ("--cpus", 256 * MiB, "--memory")
    monkeypatch.setenv(MEMORY_ENV, "")  # compose passes an unset knob as empty: no default
    assert budget_from(None, None).memory_source != MEMORY_ENV


@pytest.mark.parametrize(("var", "value"), [(CPUS_ENV, "0"), (CPUS_ENV, "two"), (MEMORY_ENV, "lots")])
def test_bad_budget_in_the_environment(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    assert_one_line_error(tune("--path", "/"), var, value)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to split")
def test_the_generator_runs_off_the_servers_cores(tmp_path):
    """locust starts with the affinity of the cores the server is not pinned to; none left: unpinned."""
    mine = sorted(os.sched_getaffinity(0))
    assert generator_cores(mine) is None
    rest = generator_cores(mine[:1])
    assert rest == mine[1:]
    code = "import os; print('cores', sorted(os.sched_getaffinity(0)))"
    run = locustrun.run_argv([sys.executable, "-c", code], tmp_path / "g", 5, "", 0.0, every=60, cores=rest)
    assert run.exit_code == 0
    assert f"cores {rest}" in run.log.read_text()


def test_workload_is_paths_or_a_locustfile_not_both(tmp_path):
    users = tmp_path / "users.py"
    users.write_text("from locust import HttpUser\n")
    assert_one_line_error(tune("--path", "/", "--locustfile", str(users)), "--path", "--locustfile")


def test_app_that_fails_to_import(tmp_path):
    (tmp_path / "brokenapp.py").write_text("import no_such_module_anywhere\napp = None\n")
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.tune", "--app", "brokenapp:app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert_one_line_error(result, "brokenapp:app", "no_such_module_anywhere")
    assert_one_line_error(tune("--app", "nosuchmodule:app"), "nosuchmodule")
    assert_one_line_error(tune("--app", "not a spec"), "not a module name")


NEEDS_ITS_ENV = """
import os
def create_app(name='x'):
    greeting = os.environ['GREETING']
    def app(environ, start_response):
        start_response('200 OK', [])
        return [greeting.encode()]
    return app
"""


def test_the_app_check_runs_the_factory_with_the_teams_environment(tmp_path):
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "app.py").write_text(NEEDS_ITS_ENV)
    (tmp_path / "team.env").write_text("GREETING=hello\n")
    spec = ("--app", "app:create_app('y')", "--chdir", str(tmp_path / "team"))
    assert_one_line_error(tune(*spec), "app:create_app('y')", "the factory raised KeyError: 'GREETING'")
    # with its variable (either way) the check passes: the next check, --image's, is the one that speaks
    for given in (("--env", "GREETING=hi"), ("--env-file", str(tmp_path / "team.env"))):
        assert_one_line_error(tune(*spec, *given, "--image", "x"), "--image needs --runtime docker")
    assert_one_line_error(tune(*spec, "--env", "GREETING"), "--env: expected KEY=VALUE")


def test_a_venv_without_any_server_is_one_line(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    result = tune("--venv", str(tmp_path / "bare"), "--app", "tests.apps:validated")
    assert_one_line_error(result, "--venv", "tune calibrates with gunicorn", "bin/pip install gunicorn==")


@pytest.mark.slow
def test_memory_budget_below_one_worker(tmp_path):
    """Known only once calibration measured a worker: still one line, exit 2."""
    result = tune("--memory", "2MiB", "--path", "/sleep?s=0.01", "--out", str(tmp_path / "r"), timeout=300)
    assert_one_line_error(result, "--memory", "one worker", quiet=False)  # progress came first


@pytest.mark.slow
def test_short_real_run(tmp_path):
    """One candidate family, one-second steps, one minute: the files and the first lines of the verdict."""
    out = tmp_path / "run"
    result = tune(
        "--servers", "gunicorn-gthread", "--path", "/sleep?s=0.01", "--slo", "p95=500ms", "--memory", "1GiB",
        "--minutes", "1", "--step-seconds", "1", "--seed", "7", "--out", str(out), timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    closing = result.stdout.strip().splitlines()
    verdict = closing[closing.index("") + 1 :] if "" in closing else closing
    assert verdict[0].startswith(
        ("Recommended: python -m gunicorn", "No configuration met", "Nothing recommended")
    )
    doc = json.loads((out / "recommendation.json").read_text())
    for key in RECOMMENDATION_KEYS:
        assert key in doc["baseline"]
    assert doc["baseline"]["workers"] == 2 * doc["budget"]["cpus"] + 1
    assert doc["baseline"]["rate_at_slo"] > 0
    assert all(c["why"] for c in doc["candidates"] if c["status"] != "pending")
    assert {c["target"] for c in doc["candidates"]} == {"gunicorn-gthread", "gunicorn-sync"}
    assert "loadtest.tune" in (out / "rerun.sh").read_text() and "--seed 7" in (out / "rerun.sh").read_text()
    assert json.loads((out / "env.json").read_text())["seed"] == 7
    html = (out / "recommendation.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert (out / "recommendation.md").read_text().splitlines()[2].startswith(verdict[0][:20])
    deployed = {p.name for p in (out / "deploy").iterdir()} if (out / "deploy").exists() else set()
    assert deployed == ({"compose.yml", "kubernetes.yaml"} if doc["recommended"] else set())
    assert doc["deploy"] == sorted(f"deploy/{name}" for name in deployed)


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--generator-workers", "0"], ["--generator-workers"]),
     (["--generator-workers", "two"], ["worker count"]),
     (["--generator-workers", "1", "--expect-workers", "1"], ["--generator-workers", "--expect-workers"]),
     (["--expect-workers", "2", "--master-bind", "0.0.0.0"], ["--master-bind", "0.0.0.0"]),
     (["--master-bind", "127.0.0.1"], ["--master-bind", "--expect-workers"])],
)  # fmt: skip
def test_bad_generator_flags(args, words):
    assert_one_line_error(tune(*args), *words)


def test_generator_workers_need_cores_beside_the_server():
    cores = len(os.sched_getaffinity(0))
    result = tune("--cpus", str(cores), "--generator-workers", "1")
    assert_one_line_error(result, "--generator-workers 1", "0 core(s) left")


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs a core beside the server's")
def test_short_real_run_with_locust_workers(tmp_path):
    """--generator-workers 1: a locust master and a worker (locust's distributed mode) send the ladders."""
    out = tmp_path / "run"
    result = tune(
        "--servers", "gunicorn-gthread", "--path", "/sleep?s=0.01", "--slo", "p95=500ms", "--memory", "1GiB",
        "--cpus", "1", "--generator-workers", "1", "--minutes", "1", "--step-seconds", "1", "--seed", "7",
        "--out", str(out), timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads((out / "recommendation.json").read_text())
    assert doc["generator"]["workers"] == 1 and doc["baseline"]["rate_at_slo"] > 0
    assert doc["generator"]["busiest_share"] is not None  # the generator's load was measured
    logs = "".join(p.read_text() for p in (out / "locust").glob("*.locust.log"))
    assert "1 workers connected" in logs and "Sending spawn jobs of 1 users" in logs


def test_the_server_binds_where_workers_from_elsewhere_reach_it(tmp_path):
    """--expect-workers: the candidate is launched through the runner on the generator's bind address."""
    launched: list[Launch] = []

    def runner(launch: Launch) -> LocalRunner:
        launched.append(launch)
        return LocalRunner(launch)

    session = Session(
        app="no_such_module_anywhere:app",  # fails at once: the launch is what is checked, not a ladder
        paths=[("/", 1.0)],
        slo=Slo({95.0: 200.0}),
        cores=sorted(os.sched_getaffinity(0))[:1],
        out=tmp_path,
        seed=1,
        runner=runner,
        generator=Generator(expect=1, bind="127.0.0.2"),
    )
    served = serve_ladder(session, Shape(family(targets.TARGETS["gunicorn-sync"]), 1, 1), [5.0], 1.0)
    assert [launch.host for launch in launched] == ["127.0.0.2"]
    assert served.run is None and served.error.startswith("failed to start")
    assert "--bind 127.0.0.2:" in " ".join(launched[0].command(8000))


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--target-rps", "0"], ["--target-rps"]),
     (["--target-rps", "lots"], ["a rate like 2000"]),
     (["--target-rps", "2000", "--utilisation", "1.5"], ["--utilisation"]),
     (["--target-rps", "2000", "--max-replicas", "0"], ["--max-replicas"]),
     (["--namespace", "Shop_Prod"], ["namespace", "Shop_Prod"]),
     (["--utilisation", "0.5"], ["--utilisation", "--target-rps"]),
     (["--max-replicas", "4"], ["--max-replicas", "--target-rps"])],
)  # fmt: skip
def test_bad_fleet_flags(args, words):
    assert_one_line_error(tune(*args), *words)
