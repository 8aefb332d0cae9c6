"""The comparison report's outline: sentences, tables and sections of a run, built once for .md and .html.

Every figure is a median over the rounds with its interval (``loadtest.measure.stats``): tables
print ``median [low-high]``, bar charts carry whiskers, and two models whose throughput intervals
overlap are called "no clear difference" rather than ranked.  Rows measured before rounds existed
render as one round with no interval.  Verdicts (machine busy, generator saturated) are
``loadtest.measure.verdicts``'s; this module words them.

``comparison_page`` and ``slow_page`` return a ``document.Page``; ``document`` renders it to
Markdown and HTML.  Knows nothing of files: the caller reads the run and writes the pages.
"""

from __future__ import annotations

import itertools
import json

from loadtest.measure import evidence, stats, verdicts
from loadtest.registry.records import ComparisonRow, SlowRow
from loadtest.registry.scenarios import SLOW_NORMAL_TIMEOUT_S
from loadtest.reporting.charts import KNEE_SHARE, by_target, knee, sweeps, timeline_key
from loadtest.reporting.document import Heading, Image, Item, Items, Page, Para, Pre, Table, items
from loadtest.reporting.figures import (
    LABELS,
    cpu_per_request,
    errors_text,
    fmt,
    interpreter_text,
    interval,
    listed,
    number,
    pct,
    rounds_of,
    spec_for,
    with_ci,
)

TITLE = "wsgi-lab comparison"

# --------------------------------------------------------------------------- a row's flags


def load_text(row: ComparisonRow) -> str:
    """Load average range over the rounds (before and after each), '' when not recorded."""
    values = verdicts.loads(row.per_round)
    return f"load average {min(values):.2f}-{max(values):.2f}" if values else ""


def instability(row: ComparisonRow, cpu_count: int | None) -> str:
    """'' for a stable row; else which metrics spread, by how much, and the likely cause."""
    if not row.unstable:
        return ""
    spreads = []
    for metric in row.unstable_metrics:
        spread = stats.relative_spread(row.value(metric), interval(row, metric))
        if spread is not None:
            spreads.append(f"{LABELS.get(metric, metric)} {spread:.0%}")
    text = (
        "unstable: spread " + (", ".join(spreads) or "wide") + f" of the median over {rounds_of(row)} rounds"
    )
    return text + "; likely cause: " + unstable_cause(row, cpu_count)


def unstable_cause(row: ComparisonRow, cpu_count: int | None) -> str:
    if row.unstable_reason:
        return row.unstable_reason
    if row.generator_saturated:
        return "the load generator saturated a core"
    if row.machine_bound:
        return "server and generator together used nearly every core"
    load = load_text(row)
    if verdicts.machine_busy(row.per_round, cpu_count):
        return f"machine busy ({load} on {cpu_count} cores)"
    return "none recorded (noise between rounds" + (f"; {load}" if load else "") + ")"


def flags(row: ComparisonRow, cpu_count: int | None) -> list[str]:
    """Everything a reader must know before trusting the row's figures."""
    out = []
    if row.error:
        out.append("FAILED: " + row.error)
    if row.generator_saturated:
        out.append("generator saturated: figures are a floor")
    if row.machine_bound:
        out.append("machine-bound: server + generator used nearly every core")
    elif busy_elsewhere(row, cpu_count):
        out.append(busy_elsewhere(row, cpu_count))
    unstable = instability(row, cpu_count)
    if unstable:
        out.append(unstable)
    return out


def busy_elsewhere(row: ComparisonRow, cpu_count: int | None) -> str:
    """'' unless every core was nearly busy while server and generator left part of it to other work."""
    found = verdicts.busy_elsewhere(row)
    if found is None or not cpu_count:
        return ""
    machine, used = found
    return (
        f"machine busy: {machine:.0%} of {cpu_count} cores in use, server + generator {used:.2f} cores;"
        " other processes took the rest, so the figures may be low"
    )


def status(row: ComparisonRow, cpu_count: int | None) -> str:
    return "; ".join(flags(row, cpu_count)) or "ok"


# --------------------------------------------------------------------------- tables


def measurement_table(rows: list[ComparisonRow], cpu_count: int | None) -> tuple[list[str], list[list[str]]]:
    header = [
        "scenario",
        "target",
        "users",
        "rounds",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "failures",
        "status",
    ]
    body = [
        [
            r.scenario,
            r.target,
            fmt(r.users, "d"),
            str(rounds_of(r)),
            with_ci(r, "rps"),
            with_ci(r, "p50_ms"),
            with_ci(r, "p95_ms"),
            with_ci(r, "p99_ms"),
            errors_text(r),
            status(r, cpu_count),
        ]
        for r in rows
    ]
    return header, body


def resource_table(rows: list[ComparisonRow]) -> tuple[list[str], list[list[str]]]:
    header = [
        "scenario",
        "target",
        "users",
        "pids",
        "threads",
        "max in flight",
        "CPU per request in app time",
        "server Python",
        "io efficiency",
        "server CPU (cores)",
        "server CPU limit",
        "server MB",
        "generator CPU",
        "generator headroom",
        "machine CPU",
    ]
    body = []
    for r in rows:
        eff = f"{pct(r.io_efficiency)} of {r.io_ceiling:.1f}" if number(r.io_efficiency) else "-"
        body.append(
            [
                r.scenario,
                r.target,
                fmt(r.users, "d"),
                fmt(r.pids, "g"),
                fmt(r.threads, "g"),
                fmt(r.value("max_in_flight"), "g"),
                cpu_per_request(r),
                interpreter_text(r),
                eff,
                with_ci(r, "server_cpu_cores", ".2f"),
                fmt(r.cpu_limit, "g", none="none"),
                with_ci(r, "server_mem_mb", ".0f") + (f" {r.server_mem_kind}" if r.server_mem_kind else ""),
                pct(r.value("generator_cpu")) + procs(r),
                pct(r.generator_headroom),
                pct(r.machine_cpu),
            ]
        )
    return header, body


def procs(row: ComparisonRow) -> str:
    n = number(row.generator_processes)
    return f" ({n:g} proc)" if n else ""


# --------------------------------------------------------------------------- sentences


def groups(rows: list[ComparisonRow]) -> dict[str, dict[int, list[ComparisonRow]]]:
    """Rows per scenario, then per user count, in the order they came."""
    out: dict[str, dict[int, list[ComparisonRow]]] = {}
    for r in rows:
        out.setdefault(r.scenario, {}).setdefault(int(r.users or 0), []).append(r)
    return out


def scenario_heading(scenario: str, by_users: dict[int, list[ComparisonRow]], params: dict) -> str:
    users = "" if len(by_users) > 1 else f", {next(iter(by_users))} users"
    return f"{scenario}{users}: {scenario_detail(scenario, params)}"


def ranking(rows: list[ComparisonRow]) -> list[str]:
    """Throughput order of one (scenario, users) group, refusing to rank overlapping intervals.

    Returns the ordered chain ('a 120 > b 80 ~ c 78') followed by one sentence
    per run of neighbours whose intervals overlap ("b and c: no clear
    difference").  With single-round rows the chain says that it ranks single
    measurements.
    """
    rated = [(r, rps) for r in rows if not r.error and (rps := r.value("rps")) is not None]
    if len(rated) < 2:
        return []
    rated.sort(key=lambda pair: -pair[1])
    with_intervals = all(interval(r, "rps") for r, _ in rated)
    top, top_rps = rated[0]
    chain = f"{top.target} {top_rps:{spec_for(top_rps)}}"
    clusters = [[top.target]]
    for (upper, _), (lower, rps) in itertools.pairwise(rated):
        same = with_intervals and stats.overlap(interval(upper, "rps"), interval(lower, "rps"))
        chain += f" {'~' if same else '>'} {lower.target} {rps:{spec_for(rps)}}"
        if same:
            clusters[-1].append(lower.target)
        else:
            clusters.append([lower.target])
    pairs = [no_clear_difference(names) for names in clusters if len(names) > 1]
    if with_intervals:
        lead = "Throughput, highest first ('~': intervals overlap, no clear difference): "
    else:
        lead = (
            "Throughput, highest first, from single measurements (no interval, so small gaps may be noise): "
        )
    return [lead + chain + ".", *pairs]


def no_clear_difference(names: list[str]) -> str:
    if len(names) == 2:
        return f"{names[0]} and {names[1]}: no clear difference (intervals overlap)."
    return f"{', '.join(names[:-1])} and {names[-1]}: no clear order (each interval overlaps the next)."


def row_sentence(row: ComparisonRow, cpu_count: int | None) -> str:
    sentence = row.answer or evidence.answer(row.target, row.scenario, row)
    busy = "" if row.machine_bound else busy_elsewhere(row, cpu_count)
    extras = [text for text in (busy, instability(row, cpu_count)) if text]
    return sentence + "".join(f" [{text}]" for text in extras)


def scenario_detail(scenario: str, params: dict) -> str:
    try:
        return {
            "io": f"GET /sleep?s={params['sleep_s']:g}, I/O-bound",
            "cpu": f"GET /cpu?ms={params['cpu_ms']:g}, CPU-bound under the GIL",
            "hello": f"GET {params['hello_path']}",
            "mixed": "hello/io/cpu weighted 3:1:1",
        }.get(scenario, scenario)
    except (KeyError, TypeError, ValueError):
        return scenario


def interval_note(rows: list[ComparisonRow]) -> str:
    """What the bracketed intervals mean for the rounds this run has."""
    counts = sorted({rounds_of(r) for r in rows if not r.error})
    if not counts or counts == [1]:
        return "One round per row: no intervals; differences between rows may be noise."
    parts = []
    for n in counts:
        if n < 2:
            parts.append("1 round: no interval")
        elif n <= stats.SMALL_N:
            parts.append(
                f"{n} rounds: min-max of the rounds, which holds the true median {stats.coverage(n):.0%}"
                " of the time"
            )
        else:
            parts.append(f"{n} rounds: bootstrap {stats.coverage(n):.0%} interval of the median")
    return (
        "Figures are medians over rounds; [low-high] is the interval of the median ("
        + "; ".join(parts)
        + f"). A row is unstable when an interval is wider than {stats.UNSTABLE_SPREAD:.0%} of its median"
        f" and than its floor for near-zero figures ({floors()})."
    )


def floors() -> str:
    """'server CPU 0.05, server MB 5, p50 1 ms, ...' from stats.NOISE_FLOOR."""
    units = {"server_cpu_cores": ("server CPU", " cores"), "server_mem_mb": ("server memory", " MB")}
    return ", ".join(
        f"{units.get(m, (m.removesuffix('_ms'), ''))[0]} {v:g}{units.get(m, ('', ' ms'))[1]}"
        for m, v in stats.NOISE_FLOOR.items()
    )


def latency_note(rows: list[ComparisonRow]) -> str:
    sources = sorted({r.latency_source for r in rows if r.latency_source})
    if not sources:
        return "Latency percentiles: locust's aggregated statistics (rounded response-time buckets)."
    return "Latency percentiles: " + "; ".join(sources) + "."


def setup_lines(rows: list[ComparisonRow], env: dict) -> list[str]:
    lines = [
        *run_lines(env),
        latency_note(rows),
        "Server CPU: psutil over the server's process tree, 1.00 = one core busy. Generator CPU: the busiest"
        " locust process, share of one core; headroom: what the generator had left.",
    ]
    return [line for line in lines if line]


def run_lines(env: dict) -> list[str]:
    """What ran, when, where and with which versions: the first lines of every report's setup."""
    params = env.get("parameters") or {}
    lines = [
        f"users {listed(params.get('users', '?'))}, {params.get('duration', '?')} s per round,"
        f" {params.get('rounds', 1)} round(s), seed {env.get('seed', params.get('seed', '-'))},"
        f" app {params.get('app', '?')}",
        f"started {env.get('started', '?')}, finished {env.get('finished', '?')}",
        f"CPU {env.get('cpu_model', '?')}, {env.get('cpu_count', '?')} cores,"
        f" cgroup CPU limit {fmt(env.get('cgroup_cpu_limit'), 'g', none='none')},"
        f" load average before {fmt(env.get('load_before'), none='?')}"
        f" / after {fmt(env.get('load_after'), none='?')}",
        f"Python {str(env.get('python', '?')).split()[0]}, git {env.get('git_commit', 'unknown')}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()),
        "repeat it: ./rerun.sh in this directory" if env.get("rerun") or env.get("argv") else "",
    ]
    return [line for line in lines if line]


# --------------------------------------------------------------------------- slow clients


SLOW_HEADING = "Slow clients"


def slow_note(slow_rows: list[SlowRow]) -> str:
    """What the slow scenario did, from its rows."""
    first = next((r for r in slow_rows if r.slow_clients), None)
    slow_clients, normal_users = (first.slow_clients, first.normal_users) if first else ("?", "?")
    return (
        f"{slow_clients} slow clients (request heads trickled a few bytes a second, idle"
        f" keep-alive connections) held connections while {normal_users} normal users sent"
        f" GET /, each giving up after {SLOW_NORMAL_TIMEOUT_S:g} s. Success, p50 and p95 are over every"
        " normal request, timeouts included; first success: from the first normal request to the first"
        " answer. What the slow clients held: the peak of psutil samples of the server's process tree"
        " (processes, threads, established connections on its port)."
    )


def slow_table(slow_rows: list[SlowRow]) -> tuple[list[str], list[list[str]]]:
    header = [
        "target",
        "normal users",
        "slow clients",
        "success",
        "p50 ms",
        "p95 ms",
        "first success s",
        "what the slow clients held",
    ]
    body = []
    for r in slow_rows:
        if r.error:
            body.append([r.target, *["-"] * 6, "FAILED: " + r.error])
            continue
        rate = number(r.success_rate)
        body.append(
            [
                r.target,
                fmt(r.normal_users, "d"),
                fmt(r.slow_clients, "d"),
                "-" if rate is None else f"{rate:.0%}",
                fmt(r.p50_ms, ".0f"),
                fmt(r.p95_ms, ".0f"),
                fmt(r.first_success_s, ".1f", none="none"),
                r.held,
            ]
        )
    return header, body


def slow_sentence(row: SlowRow) -> str:
    return row.answer


# --------------------------------------------------------------------------- sweeps


def little(row: ComparisonRow) -> tuple[float | None, float | None]:
    """(req/s x mean latency, requests inside the app: the mean, or the max for rows without it)."""
    given = row.little or {}
    predicted = number(given.get("in_flight_little"))
    rps, avg_ms = row.value("rps"), row.value("avg_ms")
    if predicted is None and rps is not None and avg_ms is not None:
        predicted = rps * avg_ms / 1000.0
    measured = number(given.get("in_flight_measured"))
    return predicted, measured if measured is not None else row.value("max_in_flight")


def little_table(scenario: str, rows: list[ComparisonRow]) -> tuple[list[str], list[list[str]]]:
    header = ["target", "users", "req/s", "mean latency ms", "req/s x latency", "in the app", "knee"]
    body = []
    for target, pts in by_target([r for r in rows if r.scenario == scenario]).items():
        point = knee(pts)
        for p in pts:
            predicted, measured = little(p)
            body.append(
                [
                    target,
                    fmt(p.users, "d"),
                    with_ci(p, "rps"),
                    fmt(p.value("avg_ms")),
                    fmt(predicted, ".1f"),
                    fmt(measured, ".1f"),
                    "knee" if point is p else "still rising" if point is None and p is pts[-1] else "",
                ]
            )
    return header, body


LITTLE_NOTE = (
    "Little's law: requests in the system = req/s x mean latency. With no wait between a user's requests "
    "it should come out close to the number of users; a clear gap means time spent outside the measured "
    "latency (generator overhead, connection setup) or a run too short for the slowest requests: requests "
    "still waiting when the run ends are not counted, which shortens the mean latency of a queueing model. "
    "'in the app' is the mean number of requests inside the app (server-side timestamps); the gap to req/s x "
    "latency is time spent queued or on the wire. Knee: the first user count reaching "
    f"{KNEE_SHARE:.0%} of the model's best req/s; 'still rising' when that is the largest count swept."
)


# --------------------------------------------------------------------------- failures and raw files


def raw_links(row: ComparisonRow) -> list[tuple[str, str]]:
    """(href, label) of every file locust and the servers left for the row, per round."""
    stems = [
        (f"r{rec.get('round')} ", str(rec["identity_file"]).removesuffix(".identity.jsonl"))
        for rec in row.per_round
        if rec.get("identity_file")
    ] or [("", f"locust/{row.scenario}/{row.target}")]
    links = []
    for label, stem in stems:
        links += [
            (f"{stem}.locust.html", label + "locust report"),
            (f"{stem}_stats.csv", label + "stats csv"),
        ]
        links += [
            (f"{stem}.identity.jsonl", label + "identity records"),
            (f"{stem}.locust.log", label + "locust log"),
        ]
    links += [(row.extra[k], k.replace("_", " ")) for k in ("stderr_log",) if row.extra.get(k)]  # older runs
    return links


def failure_items(rows: list[ComparisonRow], cpu_count: int | None) -> list[tuple[str, list[str], list[str]]]:
    """(heading, lines, logs) for every row with an error, failed requests, a flag or a note."""
    out = []
    for r in rows:
        lines = []
        if number(r.failures) or any(number(v) for v in r.errors.values()):
            lines.append(f"failed requests: {errors_text(r)}")
        lines += [f for f in flags(r, cpu_count) if not f.startswith("FAILED")]
        lines += [f"note: {n}" for n in r.notes]
        lines += [f"round {p.get('round')}: {p['error']}" for p in r.per_round if p.get("error")]
        older = r.extra.get("locust_log_tail")  # written by older runs beside the server's tail
        logs = [log for log in (r.stderr_tail, older) if log] if r.error else []
        if r.error or lines:
            heading = f"{r.scenario} / {r.target} / {r.users} users"
            heading += f": {r.error}" if r.error else ""
            out.append((heading, lines, logs))
    return out


def row_class(row: ComparisonRow) -> str:
    if row.error:
        return "failed"
    flagged = row.generator_saturated or row.machine_bound or row.unstable
    return "floor" if flagged else ""


# --------------------------------------------------------------------------- the outline


def setup_section(lines: list[str], env: dict) -> list:
    """The last sections of every run's page: how it ran, and the environment as recorded."""
    return [
        Heading("Setup"),
        items(lines, "meta"),
        Heading("Environment"),
        Pre(json.dumps(env, indent=2, default=str)),
    ]


def answers(rows: list[ComparisonRow], cpu_count: int | None) -> Items:
    def cls(r: ComparisonRow) -> str:
        return "bad" if r.error else "warn" if row_class(r) else ""

    return Items([Item(row_sentence(r, cpu_count), cls(r)) for r in rows], "answers")


def scenario_sections(rows: list[ComparisonRow], env: dict) -> list:
    params, cpus = env.get("parameters") or {}, env.get("cpu_count")
    out: list = []
    for scenario, by_users in groups(rows).items():
        out.append(Heading(scenario_heading(scenario, by_users, params)))
        for users, sub in by_users.items():
            if len(by_users) > 1:
                out.append(Heading(f"{users} users", 3))
            out += [answers(sub, cpus), *(Para(line) for line in ranking(sub))]
    return out


def figure_sections(rows: list[ComparisonRow], env: dict, charts: dict[str, Image]) -> list:
    cpus, classes = env.get("cpu_count"), [row_class(r) for r in rows]
    out: list = [
        Heading("Measurements"),
        Table(*measurement_table(rows, cpus), classes, "figures"),
        Heading("Resources and evidence"),
        Table(*resource_table(rows), classes),
        Para(
            "max in flight: most requests inside the app at one instant (from X-Request-Start/End). "
            "io efficiency: measured req/s against users / sleep, capped by the model's capacity. "
            + setup_lines(rows, env)[-1],
            "meta",
        ),
        *(charts[key] for key in ("throughput", "latency") if key in charts),
    ]
    for scenario in sweeps(rows):
        out.append(Heading(f"Sweep: {scenario}"))
        if f"sweep-{scenario}" in charts:
            out.append(charts[f"sweep-{scenario}"])
        out += [Para(LITTLE_NOTE, "meta"), Table(*little_table(scenario, rows))]
    return out


def timeline_sections(rows: list[ComparisonRow], charts: dict[str, Image]) -> list:
    swept = set(sweeps(rows))
    drawn = [(r, charts[key]) for r in rows if (key := timeline_key(r, swept)) in charts]
    if not drawn:
        return []
    out: list = [
        Heading("Timelines"),
        Para(
            "One lane per (process, thread), one bar per request, colour per process. Bars side by side in"
            " one lane: that worker served requests one after another; bars stacked across lanes: requests"
            " in flight together.",
            "meta",
        ),
    ]
    for r, image in drawn:
        out += [
            Heading(f"{r.scenario} / {r.target} / {r.users} users", 3),
            Para(r.explanation, "meta"),
            image,
        ]
    return out


def failure_sections(rows: list[ComparisonRow], cpu_count: int | None) -> list:
    found = failure_items(rows, cpu_count)
    out: list = [Heading("Failures and notes")] if found else []
    for heading, lines, logs in found:
        out += [Heading(heading, 3, "bad"), items(lines), *(Pre(log) for log in logs)]
    return out


def raw_data(rows: list[ComparisonRow]) -> list:
    links = [Item(f"{r.scenario} / {r.target} / {r.users} users", links=tuple(raw_links(r))) for r in rows]
    return [Heading("Raw data"), Items(links, "meta")]


def comparison_page(rows: list[ComparisonRow], env: dict, charts: dict[str, Image]) -> Page:
    """The outline of report.md/report.html; ``charts`` maps a chart's key to its image."""
    return Page(
        TITLE,
        " · ".join(setup_lines(rows, env)[:3]),
        [
            Para(interval_note(rows)),
            *scenario_sections(rows, env),
            *figure_sections(rows, env, charts),
            *timeline_sections(rows, charts),
            *failure_sections(rows, env.get("cpu_count")),
            *raw_data(rows),
            *setup_section(setup_lines(rows, env), env),
        ],
    )


def slow_page(slow_rows: list[SlowRow], env: dict) -> Page:
    """The outline of a slow-clients run's report.md/report.html."""
    links = [
        Item(r.target, links=((r.identity_file, "identity records"),)) for r in slow_rows if r.identity_file
    ]
    return Page(
        TITLE,
        " · ".join(run_lines(env)[:3]),
        [
            Heading(SLOW_HEADING),
            Para(slow_note(slow_rows), "meta"),
            Items([Item(slow_sentence(r), "bad" if r.error else "") for r in slow_rows], "answers"),
            Table(*slow_table(slow_rows), ["failed" if r.error else "" for r in slow_rows], "figures"),
            Heading("Raw data"),
            Items([*links, Item("", links=(("slow.json", "slow.json"),))], "meta"),
            *setup_section(run_lines(env), env),
        ],
        html_title=f"{TITLE}: slow clients",
    )
