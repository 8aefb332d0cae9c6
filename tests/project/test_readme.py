"""The README is the short front door: at most 150 lines, and every relative link in it leads somewhere.

The reference and the dated measurements live in ``docs/`` (built by ``make docs``, strictly in CI,
which checks the links between pages); the README's own links are checked here, since the site
does not include it: each must name a file of the repository and, with ``#anchor``, a heading of
that file (slugged as the docs site slugs them).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

README = ROOT / "README.md"
MAX_LINES = 150
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (the docs site's), which GitHub's matches for plain headings."""
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.MULTILINE)}


def relative_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def broken_links(text: str) -> list[str]:
    """The relative links of ``text`` (a README at the root) whose file or anchor does not exist."""
    broken = []
    for link in relative_links(text):
        path, _, anchor = link.partition("#")
        target = (ROOT / path).resolve() if path else README
        missing = not target.is_relative_to(ROOT) or not target.is_file()
        if missing or (anchor and anchor not in anchors(target)):
            broken.append(link)
    return broken


def test_the_readme_fits_on_a_screen_or_two():
    assert len(README.read_text().splitlines()) <= MAX_LINES


def test_every_relative_link_resolves_to_a_file_and_its_anchor():
    text = README.read_text()
    assert len(relative_links(text)) >= 10  # the answers, the commands and the pages all link
    assert broken_links(text) == []


def test_a_broken_link_is_seen():
    text = (
        "[a](docs/no-such-page.md) [b](docs/architecture.md#no-such-heading) [c](../outside.md) "
        "[d](docs/architecture.md#the-import-rules) [e](https://example.org/x.md) [f](docs/tune.md)"
    )
    expected = ["docs/no-such-page.md", "docs/architecture.md#no-such-heading", "../outside.md"]
    assert broken_links(text) == expected
    assert slug("Which one should I run? (`make tune`)") == "which-one-should-i-run-make-tune"
