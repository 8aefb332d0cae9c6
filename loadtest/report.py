"""Turn comparison rows into summary.json/.csv, report.md and a self-contained report.html.

Every figure is a median over the rounds with its interval (``loadtest.measure.stats``):
tables print ``median [low-high]``, bar charts carry whiskers, and two models
whose throughput intervals overlap are called "no clear difference" rather
than ranked.  Rows measured before rounds existed render as one round with no
interval.

Charts (``loadtest.reporting.charts``) are written to ``charts/`` for the markdown
report and embedded base64 in the HTML, so the HTML opens anywhere with no
network and no sibling files.
"""

from __future__ import annotations

import base64
import csv
import html
import itertools
import json
from pathlib import Path

from loadtest.catalog import ERROR_KINDS, SLOW_NORMAL_TIMEOUT_S
from loadtest.measure import evidence, stats
from loadtest.measure.rows import median_of
from loadtest.reporting.charts import (
    KNEE_SHARE,
    by_target,
    knee,
    latency_chart,
    sweep_chart,
    sweeps,
    throughput_chart,
    timeline_chart,
    timeline_key,
)
from loadtest.reporting.figures import (
    LABELS,
    errors_text,
    fmt,
    interval,
    listed,
    loads,
    number,
    pct,
    peak_load,
    rounds_of,
    spec_for,
    with_ci,
)
from loadtest.run import slow

# All cores at least this busy while server and generator used less: other work shared the machine.
BUSY_MACHINE = 0.9

CSV_COLUMNS = [
    "scenario",
    "target",
    "kind",
    "url",
    "users",
    "rounds",
    "duration_s",
    "requests",
    "failures",
    *(f"errors_{k}" for k in ERROR_KINDS),
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "avg_ms",
    "latency_source",
    "pids",
    "threads",
    "max_threads_per_pid",
    "max_in_flight",
    "app_ms_p50",
    "capacity",
    "io_ceiling",
    "io_efficiency",
    "server_cpu_cores",
    "server_mem_mb",
    "cpu_limit",
    "generator_cpu",
    "generator_processes",
    "generator_headroom",
    "generator_saturated",
    "machine_cpu",
    "machine_bound",
    *(f"{m}{stats.CI_SUFFIX}_{end}" for m in stats.METRICS for end in ("low", "high")),
    "unstable",
    "unstable_metrics",
    "unstable_reason",
    "error",
    "answer",
]


# --------------------------------------------------------------------------- figures of a row


# --------------------------------------------------------------------------- formatting


def load_text(row: dict) -> str:
    """Load average range over the rounds (before and after each), '' when not recorded."""
    values = loads(row)
    return f"load average {min(values):.2f}-{max(values):.2f}" if values else ""


def instability(row: dict, cpu_count: int | None) -> str:
    """'' for a stable row; else which metrics spread, by how much, and the likely cause."""
    if not row.get("unstable"):
        return ""
    spreads = []
    for metric in row.get("unstable_metrics") or []:
        spread = stats.relative_spread(number(row.get(metric)), interval(row, metric))
        if spread is not None:
            spreads.append(f"{LABELS.get(metric, metric)} {spread:.0%}")
    text = (
        "unstable: spread " + (", ".join(spreads) or "wide") + f" of the median over {rounds_of(row)} rounds"
    )
    return text + "; likely cause: " + unstable_cause(row, cpu_count)


def unstable_cause(row: dict, cpu_count: int | None) -> str:
    if row.get("unstable_reason"):
        return str(row["unstable_reason"])
    if row.get("generator_saturated"):
        return "the load generator saturated a core"
    if row.get("machine_bound"):
        return "server and generator together used nearly every core"
    load = load_text(row)
    busiest = peak_load(row)
    if busiest is not None and cpu_count and busiest >= cpu_count:
        return f"machine busy ({load} on {cpu_count} cores)"
    return "none recorded (noise between rounds" + (f"; {load}" if load else "") + ")"


def flags(row: dict, cpu_count: int | None) -> list[str]:
    """Everything a reader must know before trusting the row's figures."""
    out = []
    if row.get("error"):
        out.append("FAILED: " + row["error"])
    if row.get("generator_saturated"):
        out.append("generator saturated: figures are a floor")
    if row.get("machine_bound"):
        out.append("machine-bound: server + generator used nearly every core")
    elif busy_elsewhere(row, cpu_count):
        out.append(busy_elsewhere(row, cpu_count))
    unstable = instability(row, cpu_count)
    if unstable:
        out.append(unstable)
    return out


def busy_elsewhere(row: dict, cpu_count: int | None) -> str:
    """'' unless every core was nearly busy while server and generator left part of it to other work."""
    machine = number(row.get("machine_cpu"))
    if machine is None or machine < BUSY_MACHINE or not cpu_count:
        return ""
    if (number(row.get("io_efficiency")) or 0.0) >= BUSY_MACHINE:
        return ""  # the row reached its ceiling: the machine did not hold it back
    ours = [
        (number(r.get("server_cpu_cores")) or 0.0) + (number(r.get("generator_cores")) or 0.0)
        for r in row.get("per_round") or []
    ]
    if not ours:
        return ""
    used = sorted(ours)[len(ours) // 2]
    return (
        f"machine busy: {machine:.0%} of {cpu_count} cores in use, server + generator {used:.2f} cores;"
        " other processes took the rest, so the figures may be low"
    )


def status(row: dict, cpu_count: int | None) -> str:
    return "; ".join(flags(row, cpu_count)) or "ok"


def measurement_table(rows: list[dict], cpu_count: int | None) -> tuple[list[str], list[list[str]]]:
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
            r["scenario"],
            r["target"],
            fmt(r.get("users"), "d"),
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


def resource_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = [
        "scenario",
        "target",
        "users",
        "pids",
        "threads",
        "max in flight",
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
        eff = f"{pct(r['io_efficiency'])} of {r['io_ceiling']:.1f}" if number(r.get("io_efficiency")) else "-"
        body.append(
            [
                r["scenario"],
                r["target"],
                fmt(r.get("users"), "d"),
                fmt(r.get("pids"), "g"),
                fmt(r.get("threads"), "g"),
                fmt(r.get("max_in_flight"), "g"),
                eff,
                with_ci(r, "server_cpu_cores", ".2f"),
                fmt(r.get("cpu_limit"), "g", none="none"),
                with_ci(r, "server_mem_mb", ".0f")
                + (f" {r['server_mem_kind']}" if r.get("server_mem_kind") else ""),
                pct(r.get("generator_cpu")) + procs(r),
                pct(r.get("generator_headroom")),
                pct(r.get("machine_cpu")),
            ]
        )
    return header, body


def procs(row: dict) -> str:
    n = number(row.get("generator_processes"))
    return f" ({n:g} proc)" if n else ""


# --------------------------------------------------------------------------- sentences


def groups(rows: list[dict]) -> dict[str, dict[int, list[dict]]]:
    """Rows per scenario, then per user count, in the order they came."""
    out: dict[str, dict[int, list[dict]]] = {}
    for r in rows:
        out.setdefault(r["scenario"], {}).setdefault(int(r.get("users") or 0), []).append(r)
    return out


def scenario_heading(scenario: str, by_users: dict[int, list[dict]], params: dict) -> str:
    users = "" if len(by_users) > 1 else f", {next(iter(by_users))} users"
    return f"{scenario}{users}: {scenario_detail(scenario, params)}"


def ranking(rows: list[dict]) -> list[str]:
    """Throughput order of one (scenario, users) group, refusing to rank overlapping intervals.

    Returns the ordered chain ('a 120 > b 80 ~ c 78') followed by one sentence
    per run of neighbours whose intervals overlap ("b and c: no clear
    difference").  With single-round rows the chain says that it ranks single
    measurements.
    """
    ok = [r for r in rows if not r.get("error") and number(r.get("rps")) is not None]
    if len(ok) < 2:
        return []
    ok.sort(key=lambda r: -r["rps"])
    with_intervals = all(interval(r, "rps") for r in ok)
    chain = f"{ok[0]['target']} {ok[0]['rps']:{spec_for(ok[0]['rps'])}}"
    clusters = [[ok[0]["target"]]]
    for upper, lower in itertools.pairwise(ok):
        same = with_intervals and stats.overlap(interval(upper, "rps"), interval(lower, "rps"))
        chain += f" {'~' if same else '>'} {lower['target']} {lower['rps']:{spec_for(lower['rps'])}}"
        if same:
            clusters[-1].append(lower["target"])
        else:
            clusters.append([lower["target"]])
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


def row_sentence(row: dict, cpu_count: int | None) -> str:
    sentence = row.get("answer") or evidence.answer(row["target"], row["scenario"], row)
    busy = "" if row.get("machine_bound") else busy_elsewhere(row, cpu_count)
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


def interval_note(rows: list[dict]) -> str:
    """What the bracketed intervals mean for the rounds this run has."""
    counts = sorted({rounds_of(r) for r in rows if not r.get("error")})
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


def latency_note(rows: list[dict]) -> str:
    sources = sorted({str(r["latency_source"]) for r in rows if r.get("latency_source")})
    if not sources:
        return "Latency percentiles: locust's aggregated statistics (rounded response-time buckets)."
    return "Latency percentiles: " + "; ".join(sources) + "."


def setup_lines(rows: list[dict], env: dict) -> list[str]:
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


def slow_note(slow_rows: list[dict]) -> str:
    """What the slow scenario did, from its rows."""
    first = next((r for r in slow_rows if r.get("slow_clients")), {})
    return (
        f"{first.get('slow_clients', '?')} slow clients (request heads trickled a few bytes a second, idle"
        f" keep-alive connections) held connections while {first.get('normal_users', '?')} normal users sent"
        f" GET /, each giving up after {SLOW_NORMAL_TIMEOUT_S:g} s. Success, p50 and p95 are over every"
        " normal request, timeouts included; first success: from the first normal request to the first"
        " answer. What the slow clients held: the peak of psutil samples of the server's process tree"
        " (processes, threads, established connections on its port)."
    )


def slow_table(slow_rows: list[dict]) -> tuple[list[str], list[list[str]]]:
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
        if r.get("error"):
            body.append([r["target"], *["-"] * 6, "FAILED: " + r["error"]])
            continue
        rate = number(r.get("success_rate"))
        body.append(
            [
                r["target"],
                fmt(r.get("normal_users"), "d"),
                fmt(r.get("slow_clients"), "d"),
                "-" if rate is None else f"{rate:.0%}",
                fmt(r.get("p50_ms"), ".0f"),
                fmt(r.get("p95_ms"), ".0f"),
                fmt(r.get("first_success_s"), ".1f", none="none"),
                str(r.get("held", "")),
            ]
        )
    return header, body


def slow_sentence(row: dict) -> str:
    return str(row.get("answer") or slow.verdict(row))


def slow_markdown(slow_rows: list[dict], env: dict) -> str:
    lines = ["# wsgi-lab comparison", "", f"## {SLOW_HEADING}", "", slow_note(slow_rows), ""]
    lines += [f"- {slow_sentence(r)}" for r in slow_rows]
    lines += ["", *md_table(*slow_table(slow_rows))]
    lines += ["## Setup", "", *(f"- {s}" for s in run_lines(env)), ""]
    return "\n".join(lines)


def slow_html(slow_rows: list[dict], env: dict) -> str:
    e = html.escape
    classes = ["failed" if r.get("error") else "" for r in slow_rows]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>wsgi-lab comparison: slow clients</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>wsgi-lab comparison</h1>",
        f"<p class=meta>{e(' · '.join(run_lines(env)[:3]))}</p>",
        f"<h2>{SLOW_HEADING}</h2>",
        f"<p class=meta>{e(slow_note(slow_rows))}</p>",
        "<ul class=answers>",
        *(f"<li{' class=bad' if r.get('error') else ''}>{e(slow_sentence(r))}</li>" for r in slow_rows),
        "</ul>",
        html_table(*slow_table(slow_rows), classes, "figures"),
        "<h2>Raw data</h2><ul class=meta>",
        *(
            f'<li>{e(r["target"])}: <a href="{e(str(r["identity_file"]))}">identity records</a></li>'
            for r in slow_rows
            if r.get("identity_file")
        ),
        '<li><a href="slow.json">slow.json</a></li></ul>',
        "<h2>Setup</h2><ul class=meta>" + "".join(f"<li>{e(s)}</li>" for s in run_lines(env)) + "</ul>",
        "<h2>Environment</h2><pre>" + e(json.dumps(env, indent=2, default=str)) + "</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------- charts


def little(row: dict) -> tuple[float | None, float | None]:
    """(req/s x mean latency, requests inside the app: the mean, or the max for rows without it)."""
    given = row.get("little") or {}
    predicted = number(given.get("in_flight_little"))
    if predicted is None and number(row.get("rps")) is not None and number(row.get("avg_ms")) is not None:
        predicted = row["rps"] * row["avg_ms"] / 1000.0
    measured = number(given.get("in_flight_measured"))
    return predicted, measured if measured is not None else number(row.get("max_in_flight"))


def little_table(scenario: str, rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["target", "users", "req/s", "mean latency ms", "req/s x latency", "in the app", "knee"]
    body = []
    for target, pts in by_target([r for r in rows if r["scenario"] == scenario]).items():
        point = knee(pts)
        for p in pts:
            predicted, measured = little(p)
            body.append(
                [
                    target,
                    fmt(p.get("users"), "d"),
                    with_ci(p, "rps"),
                    fmt(p.get("avg_ms")),
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


def identity_path(out: Path, row: dict) -> Path | None:
    """The identity records of the row's last round (or of its only run, for older directories)."""
    if row.get("identity_file"):
        return out / str(row["identity_file"])
    for record in reversed(row.get("per_round") or []):
        if record.get("identity_file"):
            return out / str(record["identity_file"])
    return out / "locust" / row["scenario"] / f"{row['target']}.identity.jsonl"


def raw_links(row: dict) -> list[tuple[str, str]]:
    """(href, label) of every file locust and the servers left for the row, per round."""
    stems = [
        (f"r{rec.get('round')} ", str(rec["identity_file"]).removesuffix(".identity.jsonl"))
        for rec in row.get("per_round") or []
        if rec.get("identity_file")
    ] or [("", f"locust/{row['scenario']}/{row['target']}")]
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
    links += [(row[k], k.replace("_", " ")) for k in ("stderr_log",) if row.get(k)]
    return links


# --------------------------------------------------------------------------- documents


def failure_items(rows: list[dict], cpu_count: int | None) -> list[tuple[str, list[str], list[str]]]:
    """(heading, lines, logs) for every row with an error, failed requests, a flag or a note."""
    out = []
    for r in rows:
        lines = []
        if number(r.get("failures")) or any(number(v) for v in (r.get("errors") or {}).values()):
            lines.append(f"failed requests: {errors_text(r)}")
        lines += [f for f in flags(r, cpu_count) if not f.startswith("FAILED")]
        lines += [f"note: {n}" for n in r.get("notes") or []]
        lines += [f"round {p.get('round')}: {p['error']}" for p in r.get("per_round") or [] if p.get("error")]
        logs = [r[k] for k in ("stderr_tail", "locust_log_tail") if r.get(k)] if r.get("error") else []
        if r.get("error") or lines:
            heading = f"{r['scenario']} / {r['target']} / {r.get('users')} users"
            heading += f": {r['error']}" if r.get("error") else ""
            out.append((heading, lines, logs))
    return out


def md_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |" for cells in body
    ]
    return [*lines, ""]


def markdown(rows: list[dict], env: dict, charts: dict[str, str]) -> str:
    params = env.get("parameters") or {}
    cpus = env.get("cpu_count")
    lines = ["# wsgi-lab comparison", "", interval_note(rows), ""]
    for scenario, by_users in groups(rows).items():
        lines += [f"## {scenario_heading(scenario, by_users, params)}", ""]
        for users, sub in by_users.items():
            lines += [f"**{users} users**", ""] if len(by_users) > 1 else []
            lines += [f"- {row_sentence(r, cpus)}" for r in sub]
            lines += ["", *ranking(sub), ""]
    lines += md_table(*measurement_table(rows, cpus))
    lines += md_table(*resource_table(rows))
    for key, title in (("throughput", "Requests/s"), ("latency", "Latency")):
        if key in charts:
            lines += [f"![{title}]({charts[key]})", ""]
    for scenario in sweeps(rows):
        lines += [f"## Sweep: {scenario}", ""]
        if f"sweep-{scenario}" in charts:
            lines += [f"![sweep {scenario}]({charts[f'sweep-{scenario}']})", ""]
        lines += [LITTLE_NOTE, "", *md_table(*little_table(scenario, rows))]
    swept = set(sweeps(rows))
    timelines = [(r, timeline_key(r, swept)) for r in rows]
    timelines = [(r, key) for r, key in timelines if key in charts]
    if timelines:
        lines += ["## Timelines (one lane per process/thread, one bar per request)", ""]
        for r, key in timelines:
            lines += [f"![{r['scenario']} {r['target']}]({charts[key]})", ""]
    items = failure_items(rows, cpus)
    if items:
        lines += ["## Failures and notes", ""]
        for heading, body, logs in items:
            lines += [f"### {heading}", "", *(f"- {b}" for b in body), ""]
            for log in logs:
                lines += ["```", log, "```", ""]
    lines += ["## Setup", "", *(f"- {s}" for s in setup_lines(rows, env)), ""]
    return "\n".join(lines)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;
  padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .answers li{margin:.25rem 0} .bad{color:#b00020} .warn{color:#8a5a00}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.3rem .45rem;text-align:right;vertical-align:top}
th{background:#f4f4f4}
td:nth-child(-n+2),td:last-child,th:nth-child(-n+2),th:last-child{text-align:left}
td:nth-child(-n+2),table.figures td{white-space:nowrap}
table.figures td:last-child{white-space:normal;min-width:14rem}
tr.failed td{background:#fdecec} tr.floor td{background:#fff8e1}
img{max-width:100%;display:block;margin:.6rem 0}
pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:.8rem}
.meta{color:#555;font-size:.85rem}
"""


def img_tag(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def html_table(
    header: list[str], body: list[list[str]], classes: list[str] | None = None, kind: str = ""
) -> str:
    e = html.escape
    parts = [f"<table class='{kind}'><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    for cls, cells in zip(classes or [""] * len(body), body, strict=True):
        parts.append(f"<tr class='{cls}'>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    return "".join(parts) + "</table>"


def row_class(row: dict) -> str:
    if row.get("error"):
        return "failed"
    flagged = row.get("generator_saturated") or row.get("machine_bound") or row.get("unstable")
    return "floor" if flagged else ""


def html_report(rows: list[dict], env: dict, images: dict[str, bytes]) -> str:
    params = env.get("parameters") or {}
    cpus = env.get("cpu_count")
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>wsgi-lab comparison</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>wsgi-lab comparison</h1>",
        f"<p class=meta>{e(' · '.join(setup_lines(rows, env)[:3]))}</p>",
        f"<p>{e(interval_note(rows))}</p>",
    ]
    for scenario, by_users in groups(rows).items():
        parts.append(f"<h2>{e(scenario_heading(scenario, by_users, params))}</h2>")
        for users, sub in by_users.items():
            if len(by_users) > 1:
                parts.append(f"<h3>{users} users</h3>")
            parts.append("<ul class=answers>")
            for r in sub:
                cls = " class=bad" if r.get("error") else " class=warn" if row_class(r) else ""
                parts.append(f"<li{cls}>{e(row_sentence(r, cpus))}</li>")
            parts.append("</ul>")
            parts += [f"<p>{e(line)}</p>" for line in ranking(sub)]
    classes = [row_class(r) for r in rows]
    parts.append("<h2>Measurements</h2>" + html_table(*measurement_table(rows, cpus), classes, "figures"))
    parts.append("<h2>Resources and evidence</h2>" + html_table(*resource_table(rows), classes))
    parts.append(
        "<p class=meta>max in flight: most requests inside the app at one instant "
        "(from X-Request-Start/End). "
        "io efficiency: measured req/s against users / sleep, capped by the model's capacity. "
        f"{e(setup_lines(rows, env)[-1])}</p>"
    )
    for key, alt in (("throughput", "requests per second"), ("latency", "latency percentiles")):
        if key in images:
            parts.append(img_tag(images[key], alt))
    for scenario in sweeps(rows):
        parts.append(f"<h2>Sweep: {e(scenario)}</h2>")
        if f"sweep-{scenario}" in images:
            parts.append(img_tag(images[f"sweep-{scenario}"], f"sweep {scenario}"))
        parts.append(f"<p class=meta>{e(LITTLE_NOTE)}</p>" + html_table(*little_table(scenario, rows)))
    parts.append(
        "<h2>Timelines</h2><p class=meta>One lane per (process, thread), one bar per request, "
        "colour per process. Bars side by side in one lane: that worker served requests one after "
        "another; bars stacked across lanes: requests in flight together.</p>"
    )
    swept = set(sweeps(rows))
    for r in rows:
        key = timeline_key(r, swept)
        if key in images:
            parts.append(f"<h3>{e(r['scenario'])} / {e(r['target'])} / {r.get('users')} users</h3>")
            parts.append(f"<p class=meta>{e(r.get('explanation', ''))}</p>")
            parts.append(img_tag(images[key], f"timeline {r['scenario']} {r['target']}"))
    items = failure_items(rows, cpus)
    if items:
        parts.append("<h2>Failures and notes</h2>")
        for heading, body, logs in items:
            parts.append(
                f"<h3 class=bad>{e(heading)}</h3><ul>" + "".join(f"<li>{e(b)}</li>" for b in body) + "</ul>"
            )
            parts += [f"<pre>{e(log)}</pre>" for log in logs]
    parts.append("<h2>Raw data</h2><ul class=meta>")
    for r in rows:
        anchors = ", ".join(f'<a href="{e(href)}">{e(label)}</a>' for href, label in raw_links(r))
        parts.append(f"<li>{e(r['scenario'])} / {e(r['target'])} / {r.get('users')} users: {anchors}</li>")
    parts.append("</ul>")
    parts.append(
        "<h2>Setup</h2><ul class=meta>" + "".join(f"<li>{e(s)}</li>" for s in setup_lines(rows, env))
    )
    parts.append("</ul><h2>Environment</h2><pre>" + e(json.dumps(env, indent=2, default=str)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def csv_record(row: dict) -> dict:
    """The row flattened for summary.csv: intervals as low/high columns, error kinds as columns."""
    out = {k: row.get(k, "") for k in CSV_COLUMNS}
    for metric in stats.METRICS:
        ci = row.get(metric + stats.CI_SUFFIX) or ["", ""]
        out[f"{metric}{stats.CI_SUFFIX}_low"], out[f"{metric}{stats.CI_SUFFIX}_high"] = ci
    for kind in ERROR_KINDS:
        out[f"errors_{kind}"] = (row.get("errors") or {}).get(kind, "")
    out["unstable_metrics"] = " ".join(row.get("unstable_metrics") or [])
    out["rounds"] = rounds_of(row)
    return out


def restat(row: dict) -> dict:
    """The stability verdict again from ``per_round``, so a re-render applies today's rule."""
    good = [r for r in row.get("per_round") or [] if not r.get("error")]
    if len(good) >= 2:
        verdict = stats.summarize(good, stats.STABILITY_METRICS)
        row["unstable"], row["unstable_metrics"] = verdict["unstable"], verdict["unstable_metrics"]
        if not row["unstable"]:
            row["unstable_reason"] = ""
    return row


def enrich(out: Path, rows: list[dict], cpu_count: int | None) -> dict[int, list[dict]]:
    """Read each row's identity records; fill evidence the row lacks and refresh its sentence."""
    records_of = {}
    for i, r in enumerate(rows):
        r.setdefault("cpu_count", cpu_count)
        restat(r)
        path = identity_path(out, r)
        records = evidence.load(path) if path else []
        records_of[i] = records
        if "app_ms_p50" not in r:  # a row written before rows carried it: from its rounds, the same way
            r["app_ms_p50"] = median_of(r.get("per_round") or [], "app_ms_p50")
        if records and not r.get("error"):
            imbalance = evidence.pool_imbalance(records, r.get("users"))
            r["pool_full_share"] = imbalance["share"] if imbalance else None
        r["answer"] = evidence.answer(r["target"], r["scenario"], r)
    return records_of


def write_all(out: Path, rows: list[dict], env: dict, slow_rows: list[dict] | None = None) -> None:
    """Every document of a comparison; a slow-clients run (``slow_rows``) gets its own section instead."""
    if slow_rows is not None:
        (out / "report.md").write_text(slow_markdown(slow_rows, env), encoding="utf-8")
        (out / "report.html").write_text(slow_html(slow_rows, env), encoding="utf-8")
        return
    records_of = enrich(out, rows, env.get("cpu_count"))
    (out / "summary.json").write_text(
        json.dumps({"parameters": env.get("parameters"), "rows": rows}, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(csv_record(r))
    charts_dir = out / "charts"
    charts_dir.mkdir(exist_ok=True)
    images: dict[str, bytes] = {}
    if any(number(r.get("rps")) is not None for r in rows):
        images["throughput"] = throughput_chart(rows)
        images["latency"] = latency_chart(rows)
    for scenario in sweeps(rows):
        images[f"sweep-{scenario}"] = sweep_chart(scenario, rows)
    swept = set(sweeps(rows))
    for i, r in enumerate(rows):
        chart = timeline_chart(r, records_of[i])
        if chart is not None:
            images[timeline_key(r, swept)] = chart
    names = {}
    for key, data in images.items():
        (charts_dir / f"{key}.png").write_bytes(data)
        names[key] = f"charts/{key}.png"
    (out / "report.md").write_text(markdown(rows, env, names), encoding="utf-8")
    (out / "report.html").write_text(html_report(rows, env, images), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """``python -m loadtest.report DIR``: re-render the reports of a finished comparison."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m loadtest.report", description=main.__doc__)
    parser.add_argument("dir", type=Path, help="a directory written by python -m loadtest.compare")
    args = parser.parse_args(argv)
    slow_json = args.dir / "slow.json"
    try:
        env = json.loads((args.dir / "env.json").read_text(encoding="utf-8"))
        if slow_json.exists() and not (args.dir / "summary.json").exists():
            rows, slow_rows = [], json.loads(slow_json.read_text(encoding="utf-8"))
        else:
            summary = json.loads((args.dir / "summary.json").read_text(encoding="utf-8"))
            rows, slow_rows = summary["rows"], None
    except (OSError, ValueError, KeyError) as exc:
        parser.exit(2, f"{parser.prog}: error: {args.dir} is not a comparison result: {exc}\n")
    write_all(args.dir, rows, env, slow_rows)
    print(f"wrote {args.dir}/report.html")


if __name__ == "__main__":
    main()
