"""``python -m loadtest.answers`` (``make answers``): run the fixed experiments, draw a picture per answer.

Each experiment of ``questions.EXPERIMENTS`` is one ``python -m loadtest.compare`` run (its own
process: the one target runner, locust, the identity records and the verdicts are compare's) into
``--results``; the browser question is a headless Chromium run of ``/probe`` (``probe``). Then the
timelines (``reporting/charts.py``) go to ``--out`` with PNG metadata naming the run, beside
``run.json`` (environment, commands, verdicts), and the page to ``<out>.md``. A picture from a busy
machine (``measure/verdicts.py``: load above the cores, other work holding them, the load generator
saturated) is still drawn, and the page and the last lines say why not to trust it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from loadtest.answers import probe
from loadtest.answers.questions import (
    CPU_MS,
    EXPERIMENTS,
    PROBE,
    PROBE_TARGET,
    QUESTIONS,
    SHORT_EXPERIMENTS,
    SHORT_QUESTIONS,
    SLEEP_S,
    UNPICTURED,
    Experiment,
    Picture,
    Question,
)
from loadtest.measure import evidence, verdicts
from loadtest.registry import records
from loadtest.registry.records import ComparisonRow, RunError
from loadtest.run import environment
from server.oneline import OneLineParser

PROG = "python -m loadtest.answers"
DEFAULT_OUT = Path("docs/answers")
RUN_JSON = "run.json"
PROBE_JSON = "probe.json"
# The PNG text chunks every picture carries; tests/project/test_answers.py reads them back.
RUN_KEY = "wsgi-lab run"
COMMIT_KEY = "wsgi-lab commit"
COMMAND_KEY = "wsgi-lab command"


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog=PROG, description="The README's short answers as pictures from one reproducible run."
    )
    p.add_argument("--short", action="store_true", help="one server, one picture (what CI runs)")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="pictures and run.json (PNGs there this run did not write are removed); the page is <out>.md",
    )
    p.add_argument("--results", type=Path, help="the runs' directories (default results/answers-<UTC time>)")
    return p


def compare_command(experiment: Experiment, out: str, only: tuple[str, ...] = ()) -> list[str]:
    return ["python", "-m", "loadtest.compare", *experiment.compare_args(out, only)]


def rerun_commands(question: Question, experiments: dict[str, Experiment]) -> list[str]:
    """The commands that repeat a section's pictures: its experiments, on its servers only."""
    commands = []
    for name in dict.fromkeys(p.experiment for p in question.pictures):
        if name == PROBE:
            commands.append(f"{PROG}  # the browser run comes with the whole run")
            continue
        only = tuple(p.target for p in question.pictures if p.experiment == name)
        commands.append(shlex.join(compare_command(experiments[name], f"results/rerun-{name}", only)))
    return commands


def run_experiment(experiment: Experiment, results: Path) -> list[ComparisonRow]:
    """One comparison, in its own process; its rows (failed ones too), or [] if it wrote none."""
    argv = compare_command(experiment, str(results / experiment.name))
    print(f"answers: {shlex.join(argv)}", flush=True)
    subprocess.run([sys.executable, *argv[1:]], check=False)
    try:
        return records.load_summary(results / experiment.name).rows
    except RunError as exc:
        print(f"answers: {experiment.name}: no results ({exc})", flush=True)
        return []


def row_doubts(row: ComparisonRow) -> list[str]:
    """Why a row's picture should not be trusted as it stands, by the verdicts every report uses."""
    doubts = []
    if verdicts.machine_busy(row.per_round, row.cpu_count):
        peak = verdicts.peak_load(row.per_round)
        doubts.append(f"machine busy: load average {peak:.1f} on {row.cpu_count} cores around the run")
    elsewhere = None if row.machine_bound else verdicts.busy_elsewhere(row)  # machine-bound: our own load
    if elsewhere:
        doubts.append(
            f"busy with other work: {elsewhere[0]:.0%} of every core in use, {elsewhere[1]:.2f} of them ours"
        )
    if verdicts.generator_saturated(row.per_round):
        doubts.append("load generator saturated: the figures are a lower bound of what the server can do")
    if row.error:
        doubts.append(f"the run failed: {row.error}")
    return doubts


def row_numbers(row: ComparisonRow) -> dict[str, str]:
    def fig(metric: str, spec: str = ".1f") -> str:
        value = row.value(metric)
        return "-" if value is None else format(value, spec)

    return {
        "server": f"`{row.target}`",
        "requests/s": fig("rps"),
        "p50 ms": fig("p50_ms", ".0f"),
        "max in flight": fig("max_in_flight", "g"),
        "processes": fig("pids", "g"),
        "lanes": fig("threads", "g"),
        "CPU ms per request": fig("cpu_ms_mean"),
        "server CPU, cores": fig("server_cpu_cores", ".2f"),
    }


def probe_sentence(runs: list[tuple[str, dict]]) -> str:
    """What the probe picture shows, from the page's own counts."""
    parts = [
        f"{label}, the browser let {r['browserMaxOnWire']} of {r['n']} through at once "
        f"and the server ran {r['serverMaxInFlight']} at once"
        for label, r in runs
    ]
    return "With " + "; with ".join(parts) + ": the server ran whatever the browser let through."


def probe_numbers(label: str, result: dict) -> dict[str, str]:
    return {
        "run": label,
        "on the wire at once": f"{result['browserMaxOnWire']} of {result['n']}",
        "in the server at once": str(result["serverMaxInFlight"]),
        "all answered after": f"{result['elapsedMs'] / 1000:.1f} s",
    }


def picture_metadata(run: dict, question: Question) -> dict[str, str]:
    return {
        "Title": question.heading,
        "Software": f"wsgi-lab ({PROG})",
        RUN_KEY: run["run"],
        COMMIT_KEY: run["commit"],
        COMMAND_KEY: run["command"],
    }


def probe_doubts(loads: tuple[float | None, float | None]) -> list[str]:
    cores = os.cpu_count() or 1
    peak = max((v for v in loads if v is not None), default=None)
    if verdicts.load_busy(peak, cores):
        return [f"machine busy: load average {peak:.1f} on {cores} cores around the browser run"]
    return []


def draw_one(picture: Picture, question: Question, found: dict, run: dict):
    """(PNG bytes, Shown) of one picture, or (None, why it could not be drawn)."""
    from loadtest.reporting import charts
    from loadtest.reporting.answers import Shown

    meta = picture_metadata(run, question)
    if picture.experiment == PROBE:
        if "probe" not in found:
            return None, found.get("probe_problem", "the browser run did not happen")
        runs, loads = found["probe"]
        sentence = probe_sentence(runs)
        numbers = [probe_numbers(label, result) for label, result in runs]
        alt = f"/probe in headless Chromium on {picture.target}"
        return charts.probe_chart(runs, meta), Shown(
            picture.file, alt, sentence, numbers, probe_doubts(loads)
        )
    row, path = found.get((picture.experiment, picture.target), (None, None))
    if row is None:
        return None, f"no {picture.experiment} row for {picture.target}"
    data = charts.timeline_chart(row, evidence.load(path), meta) if not row.error else None
    if data is None:
        return None, f"{picture.experiment}/{picture.target}: {row.error or 'no request was served'}"
    alt = f"{picture.target}, {row.scenario}, {row.users} users"
    return data, Shown(picture.file, alt, row.answer, [row_numbers(row)], row_doubts(row))


def draw_all(
    questions: tuple[Question, ...], experiments: dict[str, Experiment], found: dict, out: Path, run: dict
):
    """Every picture into ``out``, stale ones removed: (the page's sections, the pictures, the failures)."""
    from loadtest.reporting.answers import Section

    out.mkdir(parents=True, exist_ok=True)
    sections, pictures, failures = [], [], []
    for question in questions:
        shown = []
        for picture in question.pictures:
            data, what = draw_one(picture, question, found, run)
            if data is None:
                failures.append(f"{picture.file}: {what}")
                continue
            (out / picture.file).write_bytes(data)
            what.file = f"{out.name}/{picture.file}"
            shown.append(what)
            pictures.append({"file": picture.file, "question": question.heading, "doubts": what.doubts})
        sections.append(Section(question.heading, shown, rerun_commands(question, experiments)))
    for stale in set(out.glob("*.png")) - {out / p["file"] for p in pictures}:
        stale.unlink()
    return sections, pictures, failures


def verdict(pictures: list[dict], failures: list[str]) -> str:
    doubted = [p for p in pictures if p["doubts"]]
    text = (
        f"{len(doubted)} of {len(pictures)} pictures come from a busy machine (their sections say why): "
        "rerun `make answers` on a quiet machine before reading timings off them."
        if doubted
        else "No picture of this run was taken on a busy machine: the load average stayed within the cores "
        "and the load generator had headroom."
    )
    if failures:
        text += f" Not drawn: {'; '.join(failures)}."
    return text


def collect(experiments: tuple[Experiment, ...], questions: tuple[Question, ...], results: Path) -> dict:
    """Run every experiment: (experiment, target) -> (row, its identity records' path); the probe's result."""
    found: dict = {}
    for experiment in experiments:
        for row in run_experiment(experiment, results):
            found[(experiment.name, row.target)] = (
                row,
                records.identity_path(results / experiment.name, row),
            )
    if any(p.experiment == PROBE for q in questions for p in q.pictures):
        loads = [environment.load_average()]
        try:
            print(f"answers: /probe in headless Chromium ({probe.CHROMIUM})", flush=True)
            runs = probe.run(results / PROBE)
        except probe.ProbeError as exc:
            found["probe_problem"] = str(exc)
        else:
            (results / PROBE / PROBE_JSON).write_text(json.dumps(dict(runs), indent=1), encoding="utf-8")
            found["probe"] = (runs, (loads[0], environment.load_average()))
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    experiments, questions = (SHORT_EXPERIMENTS, SHORT_QUESTIONS) if args.short else (EXPERIMENTS, QUESTIONS)
    now = dt.datetime.now(dt.UTC)
    run_id = "answers-" + now.strftime("%Y%m%dT%H%M%SZ") + ("-short" if args.short else "")
    results = args.results or Path("results") / run_id
    shown_argv = [a for a in argv if a != "--short"]
    command = shlex.join([*PROG.split(), *(["--short"] if args.short else []), *shown_argv])
    load_before, t0 = environment.load_average(), time.monotonic()
    run = {
        "run": run_id,
        "commit": environment.git_commit(),
        "command": command,
        "sleep_s": SLEEP_S,
        "cpu_ms": CPU_MS,
        "experiments": {
            e.name: {
                "command": shlex.join(compare_command(e, f"results/rerun-{e.name}")),
                "results": str(results / e.name),
            }
            for e in experiments
        },
    }
    if any(p.experiment == PROBE for q in questions for p in q.pictures):
        run["experiments"][PROBE] = {"command": PROG, "target": PROBE_TARGET, "results": str(results / PROBE)}
    found = collect(experiments, questions, results)
    named = {e.name: e for e in experiments}
    sections, pictures, failures = draw_all(questions, named, found, args.out, run)
    run["environment"] = environment.machine_record(
        now.isoformat(timespec="seconds"),
        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        (load_before, environment.load_average()),
        argv,
    )
    # The commit the code ran at, read before the run: the pictures it wrote make the tree dirty.
    run["environment"]["git_commit"] = run["commit"]
    run |= {
        "unpictured": {} if args.short else UNPICTURED,
        "pictures": pictures,
        "verdict": verdict(pictures, failures),
        "run_json": f"{args.out.name}/{RUN_JSON}",
    }
    (args.out / RUN_JSON).write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    from loadtest.reporting.answers import page

    args.out.with_suffix(".md").write_text(page(sections, run), encoding="utf-8")
    print(
        f"answers: {len(pictures)} picture(s) in {args.out}, page {args.out.with_suffix('.md')} "
        f"({time.monotonic() - t0:.0f} s); {run['verdict']}",
        flush=True,
    )
    return 1 if failures else 0
