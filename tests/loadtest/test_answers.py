"""``python -m loadtest.answers``: the short variant for real (one server, one picture), and the
judgement that says when a picture came from a machine too busy to be trusted.

The short run is compare's own experiment on ``flask-dev-nothreads`` (real servers, real locust):
ten clients on a 0.5 s sleep, which Flask's 0.12-style server serves one at a time.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from loadtest.answers import main as answers
from loadtest.answers.questions import SHORT_QUESTIONS
from loadtest.registry.records import ComparisonRow
from tests.support import run_module

pytestmark = pytest.mark.slow


def test_the_short_run_writes_one_picture_named_by_the_run_and_its_page_section(tmp_path):
    out = tmp_path / "answers"
    args = ("--short", "--out", str(out), "--results", str(tmp_path / "r"))
    result = run_module("loadtest.answers", *args, timeout=240)  # up to 45 s of it waiting for a busy machine
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run = json.loads((out / "run.json").read_text())
    (picture,) = SHORT_QUESTIONS[0].pictures
    assert [p["file"] for p in run["pictures"]] == [picture.file]
    with Image.open(out / picture.file) as png:
        meta = dict(png.text)
        assert png.width > 600
    assert meta[answers.RUN_KEY] == run["run"] and run["run"].endswith("-short")
    assert meta[answers.COMMIT_KEY] == run["environment"]["git_commit"] != ""
    assert meta[answers.COMMAND_KEY] == run["command"]
    assert run["environment"]["cpu_count"] and "versions" in run["environment"]
    assert (
        "loadtest.compare --scenario io --targets flask-dev-nothreads" in run["experiments"]["io"]["command"]
    )

    page = (tmp_path / "answers.md").read_text()
    heading = f"## {SHORT_QUESTIONS[0].heading}"
    assert page.index(heading) < page.index(f"](answers/{picture.file})") < page.index("Rerun:")
    # One process, one thread: the row's own sentence and figures say the requests took turns.
    assert "at most 1 in flight" in page
    assert "| `flask-dev-nothreads` |" in page and run["run"] in page


def row(load: float, generator_cpu: float = 0.3, error: str = "") -> ComparisonRow:
    rounds = [{"load_before": 0.4, "load_after": load, "generator_cpu": generator_cpu}]
    return ComparisonRow(
        scenario="io", target="lab-threaded", users=10, cpu_count=2, per_round=rounds, error=error
    )


def test_a_busy_machine_or_a_saturated_generator_puts_a_doubt_on_the_picture():
    assert answers.row_doubts(row(load=1.5)) == []
    (busy,) = answers.row_doubts(row(load=3.2))
    assert busy.startswith("machine busy: load average 3.2 on 2 cores")
    (saturated,) = answers.row_doubts(row(load=1.0, generator_cpu=0.97))
    assert "lower bound" in saturated
    assert answers.verdict([{"doubts": [busy]}, {"doubts": []}], []).startswith(
        "1 of 2 pictures come from a busy"
    )
    assert answers.verdict([{"doubts": []}], ["x.png: no row"]).startswith("No picture of this run")
