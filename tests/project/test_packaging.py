"""The wheel carries every file the code opens at run time, and an installed copy serves the UI script.

Built by pip from the checkout (the build backend comes from pip's configured sources; this
machine's are local wheel directories), installed with ``--no-deps`` into a fresh
venv, and exercised from a scratch directory in isolated mode (``-I``), so the checkout is never
on ``sys.path`` and cannot hide a file the wheel lacks.  The dependencies (Flask for the script's
route) come from the test's own environment as a plain path entry, which adds no ``.pth`` files
and so not this checkout's editable install.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow

# Every data file the code opens next to itself, by package: the wheel must hold each of them.
DATA_FILES = {
    "loadtest.generator": ["webui.js"],
    "app": ["static/probe.js", "static/probe.css", "templates/probe.html"],
}

CHECK = textwrap.dedent(
    """
    import sys
    from importlib import resources

    import flask

    from loadtest.generator import webui

    missing = [f"{pkg}/{name}" for pkg, names in DATA_FILES.items() for name in names
               if not resources.files(pkg).joinpath(name).is_file()]
    assert not missing, f"not in the installed wheel: {missing}"
    assert "site-packages" in webui.__file__, webui.__file__  # the installed copy, not the checkout
    from types import SimpleNamespace
    from loadtest.generator import access

    # routes() wants locust's environment only for its login decorator (off here: loopback).
    environment = SimpleNamespace(web_ui=SimpleNamespace(auth_required_if_enabled=lambda view: view))
    app = flask.Flask("check")
    guard = access.from_env({}, {})
    app.register_blueprint(webui.routes(environment, {}, None, guard), url_prefix="/wsgi-lab")
    reply = app.test_client().get("/wsgi-lab/ui.js")
    assert reply.status_code == 200 and reply.mimetype == "text/javascript", reply.status
    assert reply.data == resources.files("loadtest.generator").joinpath("webui.js").read_bytes()
    print("served", len(reply.data), "bytes of webui.js from", webui.__file__)
    """
)


def source_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (tracked or new, never ignored): no stale build/ or egg-info.

    setuptools builds in the source tree and reuses ``build/lib`` and ``*.egg-info``: a file once
    built would reach the wheel however the packaging is declared.
    """
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_an_installed_wheel_serves_the_ui_script(tmp_path):
    wheels = tmp_path / "wheels"
    source = source_copy(tmp_path / "source")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("wsgi_lab-*.whl")

    scratch = tmp_path / "venv"
    venv.create(scratch, with_pip=False)
    python = scratch / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]

    site = subprocess.run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    deps = sysconfig.get_paths()["purelib"]  # flask and friends, as a plain path (no .pth processed)
    (Path(site) / "zz_test_deps.pth").write_text(deps + "\n")
    run = subprocess.run(
        [str(python), "-I", "-c", CHECK.replace("DATA_FILES", repr(DATA_FILES))],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "served" in run.stdout
