"""Turn comparison rows into summary.json/.csv, report.md and a self-contained report.html.

Charts are matplotlib PNGs (Agg backend, no display needed), written to
``charts/`` for the markdown report and embedded base64 in the HTML, so the
HTML opens anywhere with no network and no sibling files.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtest import evidence

TIMELINE_MAX_REQUESTS = 3000
TIMELINE_MAX_LANES = 32
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]

CSV_COLUMNS = [
    "scenario",
    "target",
    "kind",
    "url",
    "users",
    "duration_s",
    "requests",
    "failures",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "avg_ms",
    "pids",
    "threads",
    "max_threads_per_pid",
    "max_in_flight",
    "capacity",
    "io_ceiling",
    "io_efficiency",
    "server_cpu_cores",
    "generator_cpu",
    "generator_saturated",
    "error",
    "answer",
]


# --------------------------------------------------------------------------- formatting


def fmt(value, spec: str = ".1f", none: str = "-") -> str:
    if value is None or value == "":
        return none
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def table_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = [
        "scenario",
        "target",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "failures",
        "pids",
        "threads",
        "max in flight",
        "io efficiency",
        "server CPU (cores)",
        "generator CPU",
        "status",
    ]
    body = []
    for r in rows:
        status = "FAILED: " + r["error"] if r.get("error") else "ok"
        if r.get("generator_saturated"):
            status += "; generator >= 90% CPU: figures are a floor"
        eff = ""
        if r.get("io_efficiency") is not None:
            eff = f"{pct(r['io_efficiency'])} of {r['io_ceiling']:.1f}"
        body.append(
            [
                r["scenario"],
                r["target"],
                fmt(r.get("rps")),
                fmt(r.get("p50_ms"), ".0f"),
                fmt(r.get("p95_ms"), ".0f"),
                fmt(r.get("p99_ms"), ".0f"),
                fmt(r.get("failures"), "d"),
                fmt(r.get("pids"), "d"),
                fmt(r.get("threads"), "d"),
                fmt(r.get("max_in_flight"), "d"),
                eff or "-",
                fmt(r.get("server_cpu_cores"), ".2f"),
                pct(r.get("generator_cpu")),
                status,
            ]
        )
    return header, body


# --------------------------------------------------------------------------- charts


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def scenarios_of(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["scenario"] for r in rows))


def throughput_chart(rows: list[dict]) -> bytes:
    scenarios = scenarios_of(rows)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.5 * len(scenarios), 4.2), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        sub = [r for r in rows if r["scenario"] == scenario]
        names = [r["target"] for r in sub]
        values = [r.get("rps") or 0 for r in sub]
        bars = ax.bar(names, values, color=[COLORS[i % len(COLORS)] for i in range(len(sub))])
        for bar, r in zip(bars, sub, strict=True):
            label = "failed" if r.get("error") else f"{r.get('rps') or 0:.1f}"
            top = max(bar.get_height(), r.get("io_ceiling") or 0)
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom")
            if r.get("io_ceiling"):
                x0, w = bar.get_x(), bar.get_width()
                ax.hlines(r["io_ceiling"], x0, x0 + w, colors="black", linestyles="dashed", linewidth=1)
        ax.set_title(f"{scenario}: requests/s (higher is better)")
        if scenario == "io":
            ax.set_xlabel("dashed line: the model's theoretical maximum")
        ax.set_ylim(0, max([*values, *(r.get("io_ceiling") or 0 for r in sub), 1]) * 1.18)
        ax.tick_params(axis="x", rotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.tight_layout()
    return png(fig)


def latency_chart(rows: list[dict]) -> bytes:
    scenarios = scenarios_of(rows)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.5 * len(scenarios), 4.2), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        sub = [r for r in rows if r["scenario"] == scenario]
        width = 0.27
        for k, (key, label) in enumerate((("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))):
            xs = [i + (k - 1) * width for i in range(len(sub))]
            ax.bar(xs, [r.get(key) or 0 for r in sub], width, label=label, color=COLORS[k])
        ax.set_xticks(range(len(sub)), [r["target"] for r in sub], rotation=30, ha="right")
        ax.set_title(f"{scenario}: latency in ms (lower is better)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return png(fig)


def natural(text: str) -> list:
    """Sort key that puts conn-2 before conn-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def lane_label(pid: str, thread: str) -> str:
    thread = thread.split(" (")[0]  # "Thread-3 (process_request_thread)" -> "Thread-3"
    return f"pid {pid} / {thread}"


def slot_lanes(reqs: list[dict]) -> dict[int, tuple[str, str]]:
    """Pack requests into concurrency slots per process (first free slot wins).

    For servers that start a new thread per connection (werkzeug), one lane
    per thread would be hundreds of lanes with one bar each; slots show the
    same concurrency in as many lanes as were ever busy at once.
    """
    slot_ends: dict[str, list[float]] = {}
    lanes: dict[int, tuple[str, str]] = {}
    for i, r in enumerate(reqs):
        ends = slot_ends.setdefault(r["pid"], [])
        for k, end in enumerate(ends):
            if end <= r["start"]:
                ends[k] = r["end"]
                break
        else:
            ends.append(r["end"])
            k = len(ends) - 1
        lanes[i] = (r["pid"], f"slot {k + 1:02d}")
    return lanes


def timeline_chart(row: dict, records: list[dict]) -> bytes | None:
    """One lane per (pid, thread), one bar per request, x = seconds since the first request."""
    reqs = sorted(evidence.served(records), key=lambda r: r["start"])
    if not reqs:
        return None
    total = len(reqs)
    note = ""
    if total > TIMELINE_MAX_REQUESTS:
        middle = total // 2 - TIMELINE_MAX_REQUESTS // 2
        shown = reqs[middle : middle + TIMELINE_MAX_REQUESTS]
        note = f" -- {TIMELINE_MAX_REQUESTS} of {total} requests (middle of the run)"
    else:
        shown = reqs
    t0 = reqs[0]["start"]
    lane_of = {i: (r["pid"], r["thread"]) for i, r in enumerate(shown)}
    distinct = set(lane_of.values())
    if len(distinct) > TIMELINE_MAX_LANES or len(distinct) > 2 * max(row.get("max_in_flight") or 1, 1) + 2:
        lane_of = slot_lanes(shown)
        note += f" -- {len(distinct)} short-lived threads drawn as concurrency slots"
    lanes = sorted(set(lane_of.values()), key=lambda k: (natural(k[0]), natural(k[1])))
    if len(lanes) > TIMELINE_MAX_LANES:
        note += f" -- first {TIMELINE_MAX_LANES} of {len(lanes)} lanes"
        lanes = lanes[:TIMELINE_MAX_LANES]
    index = {k: i for i, k in enumerate(lanes)}
    pids = sorted({k[0] for k in lanes}, key=natural)
    pid_color = {p: COLORS[i % len(COLORS)] for i, p in enumerate(pids)}
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in lanes}
    for i, r in enumerate(shown):
        if lane_of[i] in spans:
            spans[lane_of[i]].append((r["start"] - t0, max(r["end"] - r["start"], 1e-4)))
    fig, ax = plt.subplots(figsize=(11, 0.9 + 0.32 * len(lanes)))
    for lane in lanes:
        ax.broken_barh(
            spans[lane],
            (index[lane] - 0.38, 0.76),
            facecolors=pid_color[lane[0]],
            edgecolor="white",
            linewidth=0.4,
        )
    ax.set_yticks(range(len(lanes)), [lane_label(*k) for k in lanes], fontsize=8)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first request (time inside the app)")
    title = (
        f"{row['scenario']} / {row['target']}: {row.get('pids', 0)} pid(s), "
        f"{row.get('threads', 0)} thread(s), max {row.get('max_in_flight', 0)} in flight{note}"
    )
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return png(fig)


# --------------------------------------------------------------------------- documents


def answers_by_scenario(rows: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["scenario"], []).append(r["answer"])
    return out


def markdown(rows: list[dict], env: dict, charts: dict[str, str]) -> str:
    params = env["parameters"]
    lines = ["# wsgi-lab comparison", ""]
    for scenario, answers in answers_by_scenario(rows).items():
        lines.append(f"**{scenario}** ({scenario_detail(scenario, params)}):")
        lines.append("")
        lines += [f"- {a}" for a in answers]
        lines.append("")
    header, body = table_rows(rows)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for cells in body:
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    lines.append("")
    for key, title in (("throughput", "Requests/s"), ("latency", "Latency")):
        if key in charts:
            lines += [f"![{title}]({charts[key]})", ""]
    timelines = [(r, f"timeline-{r['scenario']}-{r['target']}") for r in rows]
    timelines = [(r, key) for r, key in timelines if key in charts]
    if timelines:
        lines += ["## Timelines (one lane per process/thread, one bar per request)", ""]
        for r, key in timelines:
            lines += [f"![{r['scenario']} {r['target']}]({charts[key]})", ""]
    failures = failures_md(rows)
    if failures:
        lines += ["## Failures and notes", "", *failures]
    lines += [
        "## Setup",
        "",
        f"- {params['users']} users, {params['duration']} s per target,"
        f" spawn rate {params['spawn_rate']:g}/s, app `{params['app']}`",
        f"- Python {env['python'].split()[0]}, {env['cpu_count']} CPUs, git {env['git_commit']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "- server CPU: psutil over the server's process tree; 1.00 = one core busy."
        " Generator CPU: the busiest locust process, share of one core.",
        "",
    ]
    return "\n".join(lines)


def failures_md(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        if r.get("error"):
            out += [f"### {r['scenario']} / {r['target']}: {r['error']}", ""]
            if r.get("stderr_tail"):
                out += ["```", r["stderr_tail"], "```", ""]
        for note in r.get("notes", []):
            out += [f"- note ({r['scenario']} / {r['target']}): {note}"]
    return [*out, ""] if out else []


def scenario_detail(scenario: str, params: dict) -> str:
    return {
        "io": f"GET /sleep?s={params['sleep_s']:g}, I/O-bound",
        "cpu": f"GET /cpu?ms={params['cpu_ms']:g}, CPU-bound under the GIL",
        "hello": f"GET {params['hello_path']}",
        "mixed": "hello/io/cpu weighted 3:1:1",
    }.get(scenario, scenario)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;
  padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .answers li{margin:.25rem 0} .bad{color:#b00020}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.3rem .45rem;text-align:right;vertical-align:top}
th{background:#f4f4f4}
td:nth-child(-n+2),td:last-child,th:nth-child(-n+2),th:last-child{text-align:left}
td:nth-child(-n+2){white-space:nowrap}
tr.failed td{background:#fdecec} tr.floor td{background:#fff8e1}
img{max-width:100%;display:block;margin:.6rem 0}
pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:.8rem}
.meta{color:#555;font-size:.85rem}
"""


def img_tag(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def html_report(rows: list[dict], env: dict, images: dict[str, bytes]) -> str:
    params = env["parameters"]
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>wsgi-lab comparison</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>wsgi-lab comparison</h1>",
        f"<p class=meta>{e(env['started'])} &middot; {params['users']} users &middot; "
        f"{params['duration']} s per target &middot; app <code>{e(params['app'])}</code> &middot; "
        f"{env['cpu_count']} CPUs &middot; git {e(env['git_commit'])}</p>",
    ]
    for scenario, answers in answers_by_scenario(rows).items():
        parts.append(f"<h2>{e(scenario)}: {e(scenario_detail(scenario, params))}</h2><ul class=answers>")
        for a, r in zip(answers, [r for r in rows if r["scenario"] == scenario], strict=True):
            cls = " class=bad" if r.get("error") else ""
            parts.append(f"<li{cls}>{e(a)}</li>")
        parts.append("</ul>")
    header, body = table_rows(rows)
    parts.append("<h2>Measurements</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
    for r, cells in zip(rows, body, strict=True):
        cls = "failed" if r.get("error") else "floor" if r.get("generator_saturated") else ""
        parts.append(f"<tr class='{cls}'>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    parts.append(
        "<p class=meta>max in flight: most requests inside the app at one instant "
        "(from X-Request-Start/End). "
        "io efficiency: measured req/s against users / sleep, capped by the model's capacity. "
        "Server CPU: psutil over the server's process tree (1.00 = one core). "
        "Generator CPU: busiest locust process; at 90% or more the row's figures are a floor.</p>"
    )
    for key, alt in (("throughput", "requests per second"), ("latency", "latency percentiles")):
        if key in images:
            parts.append(img_tag(images[key], alt))
    parts.append(
        "<h2>Timelines</h2><p class=meta>One lane per (process, thread), one bar per request, "
        "colour per process. Bars side by side in one lane: that worker served requests one after "
        "another; bars stacked across lanes: requests in flight together.</p>"
    )
    for r in rows:
        key = f"timeline-{r['scenario']}-{r['target']}"
        if key in images:
            parts.append(f"<h3>{e(r['scenario'])} / {e(r['target'])}</h3>")
            parts.append(f"<p class=meta>{e(r.get('explanation', ''))}</p>")
            parts.append(img_tag(images[key], f"timeline {r['scenario']} {r['target']}"))
    problems = [r for r in rows if r.get("error") or r.get("notes")]
    if problems:
        parts.append("<h2>Failures and notes</h2>")
        for r in problems:
            if r.get("error"):
                parts.append(f"<h3 class=bad>{e(r['scenario'])} / {e(r['target'])}: {e(r['error'])}</h3>")
                if r.get("stderr_tail"):
                    parts.append(f"<pre>{e(r['stderr_tail'])}</pre>")
                if r.get("locust_log_tail"):
                    parts.append(f"<pre>{e(r['locust_log_tail'])}</pre>")
            for note in r.get("notes", []):
                parts.append(f"<p>{e(r['scenario'])} / {e(r['target'])}: {e(note)}</p>")
    parts.append("<h2>Raw data</h2><ul class=meta>")
    for r in rows:
        base = f"locust/{r['scenario']}/{r['target']}"
        links = [(f"{base}.locust.html", "locust report"), (f"{base}_stats.csv", "stats csv")]
        links += [(f"{base}.identity.jsonl", "identity records")]
        links += [(r[k], k.replace("_", " ")) for k in ("stderr_log", "locust_log") if r.get(k)]
        anchors = ", ".join(f'<a href="{e(href)}">{e(label)}</a>' for href, label in links)
        parts.append(f"<li>{e(r['scenario'])} / {e(r['target'])}: {anchors}</li>")
    parts.append("</ul>")
    parts.append("<h2>Environment</h2><pre>" + e(json.dumps(env, indent=2, default=str)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_all(out: Path, rows: list[dict], env: dict) -> None:
    public = [{k: v for k, v in r.items()} for r in rows]
    (out / "summary.json").write_text(
        json.dumps({"parameters": env["parameters"], "rows": public}, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in CSV_COLUMNS})
    charts_dir = out / "charts"
    charts_dir.mkdir(exist_ok=True)
    images: dict[str, bytes] = {}
    if any(r.get("rps") is not None for r in rows):
        images["throughput"] = throughput_chart(rows)
        images["latency"] = latency_chart(rows)
    for r in rows:
        path = out / "locust" / r["scenario"] / f"{r['target']}.identity.jsonl"
        chart = timeline_chart(r, evidence.load(path))
        if chart is not None:
            images[f"timeline-{r['scenario']}-{r['target']}"] = chart
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
    try:
        rows = json.loads((args.dir / "summary.json").read_text(encoding="utf-8"))["rows"]
        env = json.loads((args.dir / "env.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        parser.exit(2, f"{parser.prog}: error: {args.dir} is not a comparison result: {exc}\n")
    for row in rows:
        row["answer"] = evidence.answer(row["target"], row["scenario"], row)
    write_all(args.dir, rows, env)
    print(f"wrote {args.dir}/report.html")


if __name__ == "__main__":
    main()
