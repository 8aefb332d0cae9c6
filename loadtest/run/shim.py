"""What we load into a team's server, staged under a name their code cannot have.

A bring-your-own app is served through ``inserver.byo`` (the identity headers,
``/_lab/usage``). Put on the team's ``PYTHONPATH`` as ``loadtest`` -- with the project
root, as before -- it would bring our ``app`` and ``server`` packages with it, and a
team's ``import app`` could find ours. So ``stage`` copies ``loadtest/inserver/`` and
``loadtest/registry/appspec.py`` into a directory of their own, as a package named
``wsgilab_shim_<hash of the files>``; its modules import each other relatively, so the
copy runs as it is, on the standard library alone (``inserver/procfs.py`` stands in for
psutil). The directory goes on PYTHONPATH after the team's own (``--chdir``), locally or
mounted read-only into a container.

What this module does not know: which server loads it.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOADTEST = Path(__file__).resolve().parents[1]
FILES = ("__init__.py", "registry/__init__.py", "registry/appspec.py")


@dataclass(frozen=True)
class Shim:
    package: str  # the unique top-level name
    directory: Path  # goes on PYTHONPATH: it holds ``package/``


def sources(root: Path = LOADTEST) -> list[str]:
    """The files copied, relative to ``loadtest/``: the package's, the registry's spec, all of inserver."""
    return [*FILES, *sorted(f"inserver/{p.name}" for p in (root / "inserver").glob("*.py"))]


def package_name(root: Path = LOADTEST) -> str:
    digest = hashlib.sha256()
    for name in sources(root):
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return f"wsgilab_shim_{digest.hexdigest()[:10]}"


def stage(into: Path, root: Path = LOADTEST) -> Shim:
    """Copy the shim into ``into/<package>/`` (readable by anyone: a container may run as another uid)."""
    shim = Shim(package_name(root), into)
    for name in sources(root):
        target = into / shim.package / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, target)
    for path in [into, *into.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return shim


@functools.cache
def staged() -> Shim:
    """This process's one staged copy, in a temporary directory removed at exit."""
    directory = Path(tempfile.mkdtemp(prefix="wsgilab-shim-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return stage(directory)
