"""The import rules per process are import-linter contracts in ``pyproject.toml``: a bad import fails lint.

The test copies the three packages and ``pyproject.toml`` into a scratch tree, plants one import
there (a new module in a folder, or a line added to a copy of an existing module) and runs the
real ``lint-imports`` on the copy: a rule that is only written down would pass an import it
should refuse.  The real tree must pass, and every folder and top-level module of ``loadtest/``
must have its place in the layers, so a new one cannot slip past every rule.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGES = ("server", "app", "loadtest")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def lint_imports(root: Path) -> tuple[int, str]:
    """Run lint-imports in ``root`` (its pyproject.toml; its packages come first on sys.path)."""
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "1000", "NO_COLOR": "1"},
    )  # fmt: skip
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def broken(output: str) -> set[str]:
    """The ids of the contracts the output reports broken."""
    return {cid for cid, contract in contracts().items() if f"{contract['name']} BROKEN" in output}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A scratch copy of the packages and the configuration."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(tree: Path, module: str, source: str) -> None:
    """Write ``source`` as ``module`` (a path), or append it to the copy of an existing module."""
    path = tree / module
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write("\n" + source)


def test_the_project_keeps_every_contract():
    status, output = lint_imports(ROOT)
    assert status == 0, output
    assert f"Contracts: {len(contracts())} kept, 0 broken" in output


def test_no_ruff_ban_lists_remain():
    """The rules are declared once: no per-folder ruff.toml, no banned-api list in pyproject.toml."""
    configs = [p for package in PACKAGES for p in (ROOT / package).rglob("ruff.toml")]
    assert configs == []
    assert "banned-api" not in (ROOT / "pyproject.toml").read_text()


def test_every_loadtest_folder_and_module_has_its_layer():
    layers = contracts()["loadtest-layers"]["layers"]
    placed = {name.strip("() ") for layer in layers for name in re.split(r"[|:]", layer)}
    here = ROOT / "loadtest"
    present = {p.name for p in here.iterdir() if (p / "__init__.py").is_file()}
    present |= {p.stem for p in here.glob("*.py") if p.name != "__init__.py"}
    assert present <= placed, f"give these a layer in pyproject.toml: {sorted(present - placed)}"


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("server/probe_module.py", "import matplotlib\n", "server"),
        ("server/probe_module.py", "from loadtest.inserver import usage\n", "server"),
        ("server/workers/probe_module.py", "import locust\n", "server"),
        ("server/http/policy.py", "import threading\n", "sans-io"),
        ("server/wsgi.py", "import socket\n", "sans-io"),
        ("server/http/core.py", "from server import wsgi\n", "server-layers"),
        ("server/http/grammar.py", "from server.http import policy\n", "http-layers"),
        ("server/base.py", "from server.workers import threaded\n", "server-layers"),
        ("server/workers/heartbeat.py", "from server.workers import prefork\n", "no-cycles"),
        ("app/probe_module.py", "from loadtest.measure import stats\n", "app"),
        ("app/probe_module.py", "from loadtest import compare\n", "app"),
        ("app/probe_module.py", "import matplotlib.pyplot as plt\n", "app"),
        ("loadtest/inserver/probe_module.py", "import locust.env\n", "inserver"),
        ("loadtest/inserver/probe_module.py", "import matplotlib\n", "inserver"),
        ("loadtest/inserver/probe_module.py", "import gevent\n", "inserver"),
        ("loadtest/inserver/probe_module.py", "from server import config\n", "inserver"),
        ("loadtest/inserver/probe_module.py", "from loadtest.registry import records\n", "inserver"),
        ("loadtest/inserver/probe_module.py", "from loadtest.measure import stats\n", "loadtest-layers"),
        ("loadtest/inserver/probe_module.py", "from loadtest.run import processes\n", "loadtest-layers"),
        ("loadtest/generator/probe_module.py", "import matplotlib\n", "generator"),
        ("loadtest/generator/probe_module.py", "import subprocess\n", "generator"),
        ("loadtest/generator/probe_module.py", "from loadtest.run import processes\n", "loadtest-layers"),
        ("loadtest/measure/probe_module.py", "from locust import events\n", "measure"),
        ("loadtest/measure/probe_module.py", "from loadtest import lifecycle\n", "loadtest-layers"),
        ("loadtest/run/probe_module.py", "from matplotlib import pyplot\n", "run"),
        ("loadtest/run/probe_module.py", "from loadtest.reporting import figures\n", "loadtest-layers"),
        ("loadtest/run/probe_module.py", "from loadtest.tune import main\n", "loadtest-layers"),
        ("loadtest/reporting/probe_module.py", "import locust\n", "reporting"),
        ("loadtest/reporting/probe_module.py", "from loadtest import compare\n", "loadtest-layers"),
        ("loadtest/tune/probe_module.py", "from loadtest.reporting import charts\n", "tune"),
        ("loadtest/tune/probe_module.py", "from loadtest.generator import arrivals\n", "tune"),
        ("loadtest/soak/main.py", "from loadtest import lifecycle\n", "loadtest-layers"),
        ("loadtest/registry/scenarios.py", "import psutil\n", "registry"),
        ("loadtest/registry/paths.py", "import matplotlib\n", "registry"),
        ("loadtest/registry/targets.py", "from server import oneline\n", "registry"),
        ("loadtest/registry/steps.py", "from loadtest.measure import stats\n", "loadtest-layers"),
        ("loadtest/registry/error_kinds.py", "from loadtest.inserver import usage\n", "loadtest-layers"),
        # a comparison round's figures are measure/'s: they read a locust run, never start one
        ("loadtest/measure/round_record.py", "from loadtest.run import locustrun\n", "loadtest-layers"),
        # drawing is reporting/'s: no entry point draws itself
        ("loadtest/diff/main.py", "import matplotlib.pyplot\n", "drawing"),
        ("loadtest/soak/main.py", "import matplotlib\n", "drawing"),
        ("loadtest/bench/text.py", "from matplotlib import pyplot\n", "drawing"),
        # a command's own modules never import each other both ways: bench's main sits above the rest
        ("loadtest/bench/measuring.py", "from loadtest.bench import main\n", "no-cycles"),
    ],
)
def test_a_forbidden_import_fails_lint(tree, module, source, contract):
    plant(tree, module, source)
    status, output = lint_imports(tree)
    assert status == 1, output
    assert contract in broken(output), output


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("loadtest/reporting/probe_module.py", "import matplotlib\n"),
        ("loadtest/generator/probe_module.py", "import locust\nfrom loadtest.measure import evidence\n"),
        ("loadtest/measure/probe_module.py", "import psutil\nfrom loadtest.inserver import usage\n"),
        (
            "loadtest/run/probe_module.py",
            "from loadtest.registry import targets\nfrom loadtest.measure import rows\n",
        ),
        ("loadtest/tune/probe_module.py", "from loadtest.run import processes\n"),
        ("loadtest/compare/main.py", "from loadtest.reporting import figures\n"),
        ("app/probe_module.py", "from loadtest.inserver import usage\n"),
        ("loadtest/inserver/probe_module.py", "from ..registry import appspec\n"),
    ],
)
def test_an_allowed_import_passes(tree, module, source):
    plant(tree, module, source)
    status, output = lint_imports(tree)
    assert status == 0, output


def test_the_run_record_is_importable_from_every_process_folder_and_imports_none(tree):
    """loadtest/registry/ (the run record among it, stdlib only) sits below every other loadtest module.

    But inserver/: it is staged into a team's server with only the registry's appspec
    (loadtest/run/shim.py), so it may import no other registry module.
    """
    for folder in ("generator", "measure", "run", "reporting", "tune"):
        plant(tree, f"loadtest/{folder}/probe_module.py", "from loadtest.registry import records\n")
    status, output = lint_imports(tree)
    assert status == 0, output
    plant(tree, "loadtest/registry/records.py", "from loadtest.measure import stats\n")
    status, output = lint_imports(tree)
    assert status == 1, output
    assert "loadtest-layers" in broken(output), output


def test_the_registry_loads_nothing_but_the_standard_library():
    """Beyond what lint sees: no module of the registry (the run record too) loads a third-party package."""
    heavy = ("locust", "gevent", "matplotlib", "flask", "werkzeug", "psutil", "h11", "numpy")
    modules = sorted(p.stem for p in (ROOT / "loadtest" / "registry").glob("*.py") if p.stem != "__init__")
    assert {"targets", "scenarios", "hosts", "error_kinds", "steps", "paths", "records"} <= set(modules)
    code = (
        "import sys, " + ", ".join(f"loadtest.registry.{m}" for m in modules) + "; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
