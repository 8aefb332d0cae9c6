"""The import rules per process are enforced by ruff: a banned import in the wrong folder fails lint.

Each folder's ``ruff.toml`` extends ``pyproject.toml`` and bans what that process must not load
(TID251). The test copies the project's ruff configuration (``pyproject.toml`` and every
``ruff.toml``, at their paths) into a scratch tree, writes one module there and runs the real ruff
on it: a rule that is only written down would pass an import it should refuse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


def ruff_configs() -> list[Path]:
    """The project's ruff configuration files, relative to the root (no venv, no results)."""
    found = [p.relative_to(ROOT) for p in ROOT.rglob("ruff.toml")]
    return [p for p in found if p.parts[0] not in {".venv", "results", "build"}]


def banned_in(tmp_path: Path, folder: str, source: str) -> list[str]:
    """Write ``source`` as a module in ``folder`` of a copy of the config; the TID251 messages."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for config in ruff_configs():
        (tmp_path / config).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / config, tmp_path / config)
    module = tmp_path / folder / "probe_module.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(source)
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251", "--output-format", "json",
         str(module)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return [finding["message"] for finding in json.loads(proc.stdout)]


def test_every_process_folder_has_its_rule():
    folders = {str(p.parent) for p in ruff_configs()}
    expected = {"server", "app"} | {
        f"loadtest/{d}" for d in ("generator", "inserver", "run", "measure", "reporting")
    }
    assert expected <= folders


@pytest.mark.parametrize(
    ("folder", "source", "banned"),
    [
        ("server", "import matplotlib\n", "matplotlib"),
        ("server", "from loadtest.inserver import usage\n", "loadtest"),
        ("server", "import locust\n", "locust"),
        ("app", "from loadtest.measure import stats\n", "loadtest.measure"),
        ("app", "import matplotlib.pyplot as plt\n", "matplotlib"),
        ("loadtest/inserver", "import locust.env\n", "locust"),
        ("loadtest/inserver", "import matplotlib\n", "matplotlib"),
        ("loadtest/inserver", "import gevent\n", "gevent"),
        ("loadtest/inserver", "from loadtest.measure import stats\n", "loadtest.measure"),
        ("loadtest/generator", "import matplotlib\n", "matplotlib"),
        ("loadtest/generator", "from loadtest.run import processes\n", "loadtest.run"),
        ("loadtest/measure", "from locust import events\n", "locust"),
        ("loadtest/run", "from matplotlib import pyplot\n", "matplotlib"),
        ("loadtest/reporting", "import locust\n", "locust"),
        ("loadtest/reporting", "from loadtest import compare\n", "loadtest.compare"),
    ],
)
def test_a_banned_import_fails_lint(tmp_path, folder, source, banned):
    messages = banned_in(tmp_path, folder, source)
    assert any(m.startswith(f"`{banned}` is banned") for m in messages), messages


@pytest.mark.parametrize(
    ("folder", "source"),
    [
        ("loadtest/reporting", "import matplotlib\n"),
        ("loadtest/generator", "import locust\nfrom loadtest.measure import evidence\n"),
        ("loadtest/measure", "import psutil\nfrom loadtest.inserver import usage\n"),
        ("app", "from loadtest.inserver import usage\n"),
    ],
)
def test_an_allowed_import_passes(tmp_path, folder, source):
    assert banned_in(tmp_path, folder, source) == []


def test_the_registry_loads_nothing_but_the_standard_library():
    """catalog.py, targets.py and records.py sit beside the entry points, where no folder rule reaches."""
    heavy = ("locust", "gevent", "matplotlib", "flask", "werkzeug", "psutil")
    code = (
        "import sys, loadtest.catalog, loadtest.targets, loadtest.records; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
