"""Every short answer in the README leads to a picture that ``make answers`` drew.

The README's answers table links each question to a section of docs/answers.md; that section
opens with a picture which exists under docs/answers/ and whose PNG metadata names the run that
docs/answers/run.json describes -- the pictures are the command's, never hand-made or left over
from another run. The page's sections are the command's questions, in its order.
"""

from __future__ import annotations

import json
import re

from PIL import Image

from loadtest.answers.main import COMMIT_KEY, RUN_KEY
from loadtest.answers.questions import QUESTIONS, UNPICTURED
from tests.project.test_readme import README, slug
from tests.support import ROOT

PAGE = ROOT / "docs" / "answers.md"
PICTURES = ROOT / "docs" / "answers"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def readme_answers() -> dict[str, str]:
    """question -> its row's evidence cell, from the README's short-answers table."""
    text = README.read_text().split("## The short answers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip("| ").replace("`", ""): cells[-1] for cells in rows[1:]}


def sections() -> dict[str, str]:
    """slug of each ``##`` heading of the page -> its text up to the next one."""
    parts = re.split(r"^## (.+)$", PAGE.read_text(), flags=re.MULTILINE)
    return {slug(h): body for h, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_readme_answer_links_to_a_section_whose_picture_the_run_drew():
    run = json.loads((PICTURES / "run.json").read_text())
    drawn = {p["file"] for p in run["pictures"]}
    page = sections()
    answers = readme_answers()
    assert len(answers) >= 9
    for question, evidence in answers.items():
        if question in UNPICTURED:
            assert "docs/answers.md" not in evidence, question
            continue
        links = re.findall(r"docs/answers\.md#([\w-]+)", evidence)
        assert links == [slug(question)], (question, evidence)
        body = page.get(links[0])
        assert body is not None, f"{question}: no section #{links[0]} in docs/answers.md"
        first = IMAGE.search(body)
        assert first and body.lstrip().startswith("!["), f"#{links[0]} does not open with its picture"
        path = PAGE.parent / first.group(1)
        assert path.is_file() and path.name in drawn, path
        with Image.open(path) as png:
            assert png.text.get(RUN_KEY) == run["run"], f"{path.name} was drawn by another run"
            assert png.text.get(COMMIT_KEY) == run["environment"]["git_commit"]


def test_the_page_has_one_section_per_question_in_the_commands_order():
    headings = [h for h in sections() if h != slug("The run behind these pictures")]
    assert headings == [slug(q.heading) for q in QUESTIONS]
    readme = {re.sub(r"[`]", "", q) for q in readme_answers()}
    assert set(UNPICTURED) <= readme, "an unpictured question the README no longer asks"
