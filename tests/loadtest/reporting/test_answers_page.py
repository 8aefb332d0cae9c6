"""make answers' renderer on made-up inputs: the probe picture carries its metadata, and each section
of the page opens with its picture, then its sentence, its doubts, its figures and its rerun."""

from __future__ import annotations

import io

from PIL import Image

from loadtest.reporting.answers import Section, Shown, page
from loadtest.reporting.charts import probe_chart


def probe_result(n: int, on_wire: int) -> dict:
    """n fetches of 0.5 s sent at t=0 that the browser let out ``on_wire`` at a time (ms since the epoch)."""
    t0 = 1.7e12
    reqs = []
    for i in range(n):
        start = t0 + 500 * (i // on_wire)
        reqs.append(
            {
                "i": i,
                "sent": t0,
                "wireStart": start,
                "wireEnd": start + 500,
                "received": start + 501,
                "serverStart": start + 1,
                "serverEnd": start + 499,
                "pid": "7",
                "thread": f"conn-{i % on_wire}",
            }
        )
    return {"n": n, "requests": reqs, "browserMaxOnWire": on_wire, "serverMaxInFlight": on_wire}


def test_the_probe_picture_is_a_png_with_the_runs_metadata():
    data = probe_chart(
        [("same URL", probe_result(10, 1)), ("different URLs", probe_result(10, 6))], {"wsgi-lab run": "r1"}
    )
    with Image.open(io.BytesIO(data)) as png:
        assert png.format == "PNG" and png.text["wsgi-lab run"] == "r1"
        assert png.height > 300


def test_a_section_opens_with_its_picture_and_says_why_not_to_trust_it():
    shown = Shown(
        "answers/a.png",
        "a, io",
        "a: requests waited in line",
        [{"server": "a", "rps": "2.0"}],
        ["machine busy"],
    )
    run = {
        "sleep_s": 0.5,
        "cpu_ms": 50,
        "run": "answers-x",
        "verdict": "1 of 1 pictures come from a busy machine",
        "command": "python -m loadtest.answers",
        "run_json": "answers/run.json",
        "unpictured": {"Q?": "no timeline"},
        "environment": {
            "started": "s",
            "finished": "f",
            "git_commit": "abc",
            "cpu_count": 2,
            "cpu_model": "cpu",
            "python": "3.11.7 (main)",
            "load_before": 0.1,
            "load_after": None,
        },
    }
    text = page([Section("Is it?", [shown], ["python -m loadtest.compare --targets a"])], run)
    body = text.split("## Is it?\n", 1)[1]
    assert body.lstrip().startswith("![a, io](answers/a.png)")
    order = [
        "requests waited in line",
        "machine busy",
        "| a | 2.0 |",
        "python -m loadtest.compare --targets a",
    ]
    assert [body.index(t) for t in order] == sorted(body.index(t) for t in order)
    assert "answers-x" in text and "- Not pictured: *Q?* -- no timeline." in text
