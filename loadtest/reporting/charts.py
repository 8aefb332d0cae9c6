"""The report's charts as PNG bytes: bars with interval whiskers, sweeps, timelines.

matplotlib with the Agg backend (no display needed).  Every bar chart draws
the interval of its median as whiskers (``yerr``); a sweep marks each model's
knee; a timeline draws one lane per (process, thread or greenlet) and shades
the spans where a worker process was full while another had a free thread.
Each timeline bar is the request's time inside the app, pale, with the CPU time
it used (``X-Request-Cpu-Ms``) as a dark core: threads taking turns on one GIL
are long pale bars with thin cores, processes on their own cores solid bars.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtest.inserver.headers import LANE_GREENLET
from loadtest.measure import evidence
from loadtest.registry.records import ComparisonRow
from loadtest.reporting.figures import LABELS, fmt, interval

TIMELINE_MAX_REQUESTS = 3000

TIMELINE_MAX_LANES = 32

# A model is at its knee once it reaches this share of the best throughput it showed in the sweep.
KNEE_SHARE = 0.9

COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


def yerr(values: list[float | None], cis: list[list[float] | None]) -> list[list[float]]:
    """Asymmetric whiskers for matplotlib: distance from each median down to low and up to high."""
    lows, highs = [], []
    for value, ci in zip(values, cis, strict=True):
        if value is None or not ci:
            lows.append(0.0)
            highs.append(0.0)
        else:
            lows.append(max(value - ci[0], 0.0))
            highs.append(max(ci[1] - value, 0.0))
    return [lows, highs]


def png(fig, metadata: dict[str, str] | None = None) -> bytes:
    """The figure as PNG bytes; ``metadata`` becomes the PNG's text chunks (what run drew it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata=metadata)
    plt.close(fig)
    return buf.getvalue()


def scenarios_of(rows: list[ComparisonRow]) -> list[str]:
    return list(dict.fromkeys(r.scenario for r in rows))


def sweeps(rows: list[ComparisonRow]) -> list[str]:
    """Scenarios measured at several user counts."""
    return [s for s in scenarios_of(rows) if len({r.users for r in rows if r.scenario == s}) > 1]


def bar_label(row: ComparisonRow, sweep: bool) -> str:
    return f"{row.target} @{row.users}" if sweep else row.target


def style_xticks(ax) -> None:
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")


def per_scenario(rows: list[ComparisonRow]):
    """A figure with one panel per scenario: (figure, [(axes, scenario, its rows)])."""
    scenarios = scenarios_of(rows)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.5 * len(scenarios), 4.2), squeeze=False)
    panels = [(ax, s, [r for r in rows if r.scenario == s]) for ax, s in zip(axes[0], scenarios, strict=True)]
    return fig, panels


def throughput_chart(rows: list[ComparisonRow]) -> bytes:
    swept = set(sweeps(rows))
    fig, panels = per_scenario(rows)
    for ax, scenario, sub in panels:
        values = [r.value("rps") for r in sub]
        cis = [interval(r, "rps") for r in sub]
        names = [bar_label(r, scenario in swept) for r in sub]
        bars = ax.bar(
            names,
            [v or 0 for v in values],
            yerr=yerr(values, cis),
            capsize=4,
            color=[COLORS[i % len(COLORS)] for i in range(len(sub))],
        )
        for bar, r, ci in zip(bars, sub, cis, strict=True):
            label = "failed" if r.error else f"{r.value('rps') or 0:.1f}"
            top = max(bar.get_height(), ci[1] if ci else 0, r.io_ceiling or 0)
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom")
            if r.io_ceiling:
                x0, w = bar.get_x(), bar.get_width()
                ax.hlines(r.io_ceiling, x0, x0 + w, colors="black", linestyles="dashed", linewidth=1)
        ax.set_title(f"{scenario}: requests/s (higher is better)")
        ax.set_xlabel(
            "whiskers: interval of the median" + ("; dashed: the model's maximum" if scenario == "io" else "")
        )
        tops = [
            *(v or 0 for v in values),
            *(c[1] for c in cis if c),
            *(r.io_ceiling or 0 for r in sub),
            1,
        ]
        ax.set_ylim(0, max(tops) * 1.18)
        style_xticks(ax)
    fig.tight_layout()
    return png(fig)


def latency_chart(rows: list[ComparisonRow]) -> bytes:
    swept = set(sweeps(rows))
    fig, panels = per_scenario(rows)
    for ax, scenario, sub in panels:
        width = 0.27
        for k, metric in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            xs = [i + (k - 1) * width for i in range(len(sub))]
            values = [r.value(metric) for r in sub]
            cis = [interval(r, metric) for r in sub]
            ax.bar(
                xs,
                [v or 0 for v in values],
                width,
                yerr=yerr(values, cis),
                capsize=2,
                label=LABELS[metric],
                color=COLORS[k],
            )
        ax.set_xticks(
            range(len(sub)), [bar_label(r, scenario in swept) for r in sub], rotation=30, ha="right"
        )
        ax.set_title(f"{scenario}: latency in ms (lower is better)")
        ax.set_xlabel("whiskers: interval of the median")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return png(fig)


def knee(points: list[ComparisonRow]) -> ComparisonRow | None:
    """First user count at which a model reaches KNEE_SHARE of its best throughput in the sweep.

    None when that is the largest user count: throughput was still rising, the
    knee lies beyond the sweep.
    """
    rates = [(p, rps) for p in points if (rps := p.value("rps")) is not None]
    if len(rates) < 2:
        return None
    best = max(rps for _, rps in rates)
    first = next(p for p, rps in rates if rps >= KNEE_SHARE * best)
    ok = [p for p, _ in rates]
    return None if first is ok[-1] else first


def by_target(rows: list[ComparisonRow]) -> dict[str, list[ComparisonRow]]:
    out: dict[str, list[ComparisonRow]] = {}
    for r in rows:
        if not r.error:
            out.setdefault(r.target, []).append(r)
    return {t: sorted(pts, key=lambda r: r.users or 0) for t, pts in out.items()}


def sweep_chart(scenario: str, rows: list[ComparisonRow]) -> bytes:
    """Throughput and p95 against users, one line per model, whiskers, the knee circled."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    lines = by_target([r for r in rows if r.scenario == scenario])
    for i, (target, pts) in enumerate(lines.items()):
        users = [p.users for p in pts]
        color = COLORS[i % len(COLORS)]
        for ax, metric in zip(axes, ("rps", "p95_ms"), strict=True):
            values = [p.value(metric) for p in pts]
            ax.errorbar(
                users,
                values,
                yerr=yerr(values, [interval(p, metric) for p in pts]),
                marker="o",
                capsize=3,
                color=color,
                label=target,
            )
        point = knee(pts)
        if point is not None:
            axes[0].plot(
                [point.users], [point.value("rps")], marker="o", markersize=14, mfc="none", color=color
            )
    counts = sorted({r.users for r in rows if r.scenario == scenario and r.users})
    for ax, title in zip(axes, ("requests/s (circle: knee)", "p95 latency, ms"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()
        ax.set_xlabel("users")
        ax.set_title(f"{scenario}: {title}")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(bottom=0)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return png(fig)


def lane_label(pid: str, thread: str, kind: str = "") -> str:
    thread = thread.split(" (")[0]  # "Thread-3 (process_request_thread)" -> "Thread-3"
    return f"pid {pid} / {kind} {thread}" if kind == LANE_GREENLET else f"pid {pid} / {thread}"


# A timeline bar: pale for the time inside the app, a dark core as long as the CPU time it used.
WALL_ALPHA = 0.35
CORE_HEIGHT = 0.44
LANE_HEIGHT = 0.76


def draw_bars(ax, y: int, bars: list[tuple[float, float, float | None]], color: str) -> None:
    """``bars``: (start, wall, cpu) in seconds; the core starts with the bar (when the CPU ran is unknown)."""
    ax.broken_barh(
        [(start, wall) for start, wall, _ in bars],
        (y - LANE_HEIGHT / 2, LANE_HEIGHT),
        facecolors=color,
        alpha=WALL_ALPHA,
        edgecolor="white",
        linewidth=0.4,
    )
    cores = [(start, min(cpu, wall)) for start, wall, cpu in bars if cpu]
    if cores:
        ax.broken_barh(cores, (y - CORE_HEIGHT / 2, CORE_HEIGHT), facecolors=color, linewidth=0)


def timeline_legend(ax, with_cpu: bool) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#4e79a7", alpha=WALL_ALPHA, label="pale: time inside the app (wall)")]
    if with_cpu:
        handles.append(Patch(facecolor="#4e79a7", label="dark core: CPU time the request used"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)


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


def timeline_chart(
    row: ComparisonRow, records: list[dict], metadata: dict[str, str] | None = None
) -> bytes | None:
    """One lane per (pid, thread), one bar per request, x = seconds since the first request.

    Shaded spans: one process had every thread busy while another had a free
    one and a user's request was outside the app (``evidence.pool_imbalance``).
    ``metadata``: the PNG's text chunks.
    """
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
    if len(distinct) > TIMELINE_MAX_LANES or len(distinct) > 2 * max(evidence.in_flight(row) or 1, 1) + 2:
        lane_of = slot_lanes(shown)
        note += f" -- {len(distinct)} short-lived {evidence.lane_word(row)}s drawn as concurrency slots"
    lanes = sorted(set(lane_of.values()), key=lambda k: (evidence.natural(k[0]), evidence.natural(k[1])))
    if len(lanes) > TIMELINE_MAX_LANES:
        note += f" -- first {TIMELINE_MAX_LANES} of {len(lanes)} lanes"
        lanes = lanes[:TIMELINE_MAX_LANES]
    index = {k: i for i, k in enumerate(lanes)}
    pids = sorted({k[0] for k in lanes}, key=evidence.natural)
    pid_color = {p: COLORS[i % len(COLORS)] for i, p in enumerate(pids)}
    spans: dict[tuple[str, str], list[tuple[float, float, float | None]]] = {k: [] for k in lanes}
    kinds: dict[tuple[str, str], str] = {}
    for i, r in enumerate(shown):
        if lane_of[i] in spans:
            cpu = r["cpu_ms"] / 1000.0 if r.get("cpu_ms") is not None else None
            spans[lane_of[i]].append((r["start"] - t0, max(r["end"] - r["start"], 1e-4), cpu))
            kinds[lane_of[i]] = str(r.get("lane_kind") or "")
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.32 * len(lanes)))
    imbalance = evidence.pool_imbalance(shown, row.users)
    if imbalance and imbalance["intervals"]:
        for start, end in imbalance["intervals"]:
            ax.axvspan(start - t0, end - t0, color="#e15759", alpha=0.15, linewidth=0)
        note += f" -- shaded: a process full while another had a free thread ({imbalance['share']:.0%})"
    for lane in lanes:
        draw_bars(ax, index[lane], spans[lane], pid_color[lane[0]])
    timeline_legend(ax, any(cpu for bars in spans.values() for _, _, cpu in bars))
    ax.set_yticks(range(len(lanes)), [lane_label(*k, kinds.get(k, "")) for k in lanes], fontsize=8)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first request (time inside the app)")
    title = (
        f"{row.scenario} / {row.target} / {row.users} users: "
        f"{fmt(row.pids, 'g')} pid(s), "
        f"{fmt(row.threads, 'g')} {evidence.lane_word(row)}(s), "
        f"max {fmt(row.value('max_in_flight'), 'g')} in flight{cpu_note(row)}{note}"
    )
    ax.set_title(title, fontsize=10, loc="left", wrap=True)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return png(fig, metadata)


def cpu_note(row: ComparisonRow) -> str:
    """ " -- 20 ms CPU in 190 ms inside the app per request" when the row has both figures."""
    cpu, wall = row.value("cpu_ms_mean"), row.value("app_ms_mean")
    if cpu is None or wall is None:
        return ""
    return f" -- {cpu:.1f} ms CPU in {wall:.1f} ms inside the app per request"


def timeline_key(row: ComparisonRow, swept: set[str]) -> str:
    key = f"timeline-{row.scenario}-{row.target}"
    return key + f"-u{row.users}" if row.scenario in swept else key


# The probe picture: what the browser let through (left) beside what the server ran (right).
WAITING_COLOR = "#bab0ac"


def probe_chart(runs: list[tuple[str, dict]], metadata: dict[str, str] | None = None) -> bytes:
    """One row per probe run (``label``, the page's ``window.probeResult``), two panels each.

    Left, one line per request: pale grey while the browser held it back (sent to on the wire),
    coloured while it was on the wire. Right, one lane per (pid, thread): when the app ran it,
    from the identity headers. x = seconds since the run's first ``fetch()``, the same in both.
    """
    fig, axes = plt.subplots(
        len(runs), 2, figsize=(11, 0.6 + 2.6 * len(runs)), squeeze=False, gridspec_kw={"width_ratios": [3, 2]}
    )
    for (label, result), (left, right) in zip(runs, axes, strict=True):
        reqs = sorted(result["requests"], key=lambda r: r["i"])
        t0 = min(r["sent"] for r in reqs)
        for r in reqs:
            sec = [(r["sent"] - t0) / 1000, (r["wireStart"] - t0) / 1000, (r["wireEnd"] - t0) / 1000]
            left.broken_barh(
                [(sec[0], max(sec[1] - sec[0], 1e-3))], (r["i"] - 0.35, 0.7), facecolors=WAITING_COLOR
            )
            left.broken_barh(
                [(sec[1], max(sec[2] - sec[1], 1e-3))], (r["i"] - 0.35, 0.7), facecolors=COLORS[0]
            )
        left.set_yticks(range(len(reqs)), [f"fetch {r['i'] + 1}" for r in reqs], fontsize=7)
        left.invert_yaxis()
        left.set_title(
            f"{label}: at most {result['browserMaxOnWire']} of {result['n']} on the wire at once",
            fontsize=9,
            loc="left",
        )
        lanes = sorted(
            {(r["pid"], r["thread"]) for r in reqs},
            key=lambda k: (evidence.natural(k[0]), evidence.natural(k[1])),
        )
        for y, lane in enumerate(lanes):
            bars = [
                ((r["serverStart"] - t0) / 1000, max((r["serverEnd"] - r["serverStart"]) / 1000, 1e-4), None)
                for r in reqs
                if (r["pid"], r["thread"]) == lane
            ]
            draw_bars(right, y, bars, COLORS[y % len(COLORS)])
        right.set_yticks(range(len(lanes)), [lane_label(*k) for k in lanes], fontsize=7)
        right.set_ylim(-0.6, len(lanes) - 0.4)
        right.invert_yaxis()
        right.set_title(
            f"the server ran at most {result['serverMaxInFlight']} at once", fontsize=9, loc="left"
        )
        end = max(r["received"] - t0 for r in reqs) / 1000
        for ax in (left, right):
            ax.set_xlim(0, end * 1.02)
            ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    axes[0][0].legend(
        handles=[
            Patch(facecolor=WAITING_COLOR, label="held back by the browser"),
            Patch(facecolor=COLORS[0], label="on the wire"),
        ],
        loc="upper right",
        fontsize=7,
    )
    for ax in axes[-1]:
        ax.set_xlabel("seconds since the page's fetch() calls")
    fig.tight_layout()
    return png(fig, metadata)
