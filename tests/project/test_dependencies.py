"""The runtime dependencies are named once per file that needs them, and the same in each.

``pyproject.toml`` lists the direct dependencies; ``requirements.txt`` pins them with everything they
pull in, and its first lines give the recipe that regenerates the pins.  A recipe that leaves out
a direct dependency nothing else pulls in (waitress, granian, pyuwsgi) would drop it silently.
"""

from __future__ import annotations

import re
import tomllib

from tests.support import ROOT


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonical(re.split(r"[<>=!~ ;\[]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}


def test_the_regeneration_recipe_installs_every_direct_dependency():
    text = (ROOT / "requirements.txt").read_text()
    recipe = re.search(r"pip install ([^,\n]+)", text)
    assert recipe, "requirements.txt lost its regeneration recipe"
    assert {canonical(name) for name in recipe.group(1).split()} == direct_dependencies()


def test_every_direct_dependency_is_pinned():
    pins = {
        canonical(line.split("==")[0])
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert direct_dependencies() <= pins
    assert {"waitress", "granian", "pyuwsgi"} <= direct_dependencies()
