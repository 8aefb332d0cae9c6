"""``make answers``' page: one section per question, the picture first, then what it says and the numbers.

Each section: the picture (written by the same run), one sentence read off it (the row's own
sentence from ``measure/evidence.py``, or the probe page's verdict), the figures, any reason not to
trust them (the run's verdicts), and the command that repeats the experiment. Knows nothing of how
the run was made: it renders what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtest.reporting.figures import fmt

INTRO = """\
Each picture below was drawn by one run of `make answers` (the run named at the end of this page
and in each picture's PNG metadata), never by hand. A timeline has one lane per process and thread
(or greenlet) that served; each bar is one request's time inside the app, pale, with the CPU time it
used as a dark core. Ten concurrent clients, each sending its next request as soon as the last one
answered; the sleep endpoint spends {sleep} s per request waiting, the CPU endpoint {cpu} ms
computing. How the run and its judgements work: [Compare and the report](compare.md)."""


@dataclass
class Shown:
    """One picture of a section and what the page says of it."""

    file: str  # relative to the page
    alt: str
    sentence: str  # read off the picture
    numbers: list[dict[str, str]]  # table rows: column -> figure
    doubts: list[str] = field(default_factory=list)  # why not to trust it (busy machine, ...)


@dataclass
class Section:
    heading: str
    pictures: list[Shown]
    rerun: list[str]  # commands that repeat the section's experiments


def table(rows: list[dict[str, str]]) -> list[str]:
    heads = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(heads) + " |", "| " + " | ".join("---" for _ in heads) + " |"]
    lines += ["| " + " | ".join(r.get(h, "") for h in heads) + " |" for r in rows]
    return lines


def section(s: Section) -> list[str]:
    lines = [f"## {s.heading}", ""]
    for p in s.pictures:
        lines += [f"![{p.alt}]({p.file})", "", p.sentence, ""]
        if p.doubts:
            lines += [
                '!!! warning "Not to be trusted as it stands"',
                "",
                *(f"    - {d}" for d in p.doubts),
                "",
            ]
    lines += [*table([n for p in s.pictures for n in p.numbers]), ""]
    lines += ["Rerun: `make answers`, or this experiment alone:", "", "```sh", *s.rerun, "```", ""]
    return lines


def page(sections: list[Section], run: dict) -> str:
    lines = [
        "# The short answers, seen",
        "",
        INTRO.format(sleep=fmt(run["sleep_s"], "g"), cpu=fmt(run["cpu_ms"], "g")),
        "",
    ]
    for s in sections:
        lines += section(s)
    env = run["environment"]
    lines += [
        "## The run behind these pictures",
        "",
        f"Run `{run['run']}`, {env['started']} to {env['finished']}, commit `{env['git_commit']}`, "
        f"on {env['cpu_count']} x {env['cpu_model']} (Python {env['python'].split()[0]}), "
        f"load average {fmt(env['load_before'], '.2f')} before and {fmt(env['load_after'], '.2f')} after.",
        "",
        run["verdict"],
        "",
        *(f"- Not pictured: *{q}* -- {why}." for q, why in run.get("unpictured", {}).items()),
        "",
        f"Command: `{run['command']}`. Environment, versions and every experiment's command line: "
        f"[`answers/run.json`]({run['run_json']}).",
        "",
    ]
    return "\n".join(lines)
