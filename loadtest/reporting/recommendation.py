"""``recommendation.md`` and ``.html`` from ``recommendation.json``: one outline, two renderings.

``outline`` turns the record into one page of blocks (``reporting/document.py``),
rendered to Markdown and HTML by the skeleton every report shares.  Charts are PNGs
(matplotlib, Agg): rate at the objectives against memory for every measured
candidate with the Pareto frontier marked, and p95 latency against arrival
rate for the top candidates and the baseline.  The Markdown links the PNG
files written beside it; the HTML embeds them.

What this module does not know: how anything was measured or chosen.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtest.registry.records import Status
from loadtest.registry.workload import Traffic
from loadtest.reporting import document
from loadtest.reporting.document import Block, Heading, Image, Page, Para, Table

TOP_CURVES = 4
COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2"]


def fmt(value, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec) if isinstance(value, int | float) else str(value)


def measured(result: dict) -> list[dict]:
    return [c for c in result["candidates"] if c["status"] == Status.MEASURED]


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both memory (lower) and rate (higher), by memory."""
    front: list[tuple[float, float]] = []
    for mem, rate in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or rate > front[-1][1]:
            front.append((mem, rate))
    return front


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def rate_memory_chart(result: dict) -> bytes:
    cands = [c for c in measured(result) if c["memory_mb"] is not None]
    fig, ax = plt.subplots(figsize=(8, 5))
    for c in cands:
        color = "#e15759" if c["baseline"] else "#4e79a7"
        ci = c.get("rate_at_slo_interval")
        yerr = [[c["rate_at_slo"] - ci[0]], [ci[1] - c["rate_at_slo"]]] if ci else None
        ax.errorbar(c["memory_mb"], c["rate_at_slo"], yerr=yerr, fmt="o", color=color, capsize=3)
        ax.annotate(
            c["key"],
            (c["memory_mb"], c["rate_at_slo"]),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    front = pareto([(c["memory_mb"], c["rate_at_slo"]) for c in cands])
    if front:
        ax.step(
            [m for m, _ in front],
            [r for _, r in front],
            where="post",
            color="#59a14f",
            label="Pareto frontier",
        )
    budget = result["budget"]["memory_mb"]
    top = max((c["memory_mb"] for c in cands), default=budget)
    if budget <= 3 * top:
        ax.axvline(budget, color="#999", linestyle="--", label="memory budget")
    else:  # a budget far beyond every candidate would squeeze them against the axis
        ax.set_xlim(0, top * 1.3)
        ax.plot([], [], " ", label=f"memory budget {budget:.0f} MB (off the chart)")
    ax.set_xlabel("server memory, PSS (MB)")
    ax.set_ylabel("arrival rate at the objectives (req/s)")
    ax.set_title("Rate at the objectives against memory (red: baseline)")
    ax.legend(loc="lower right", fontsize=8)
    return png(fig)


def latency_chart(result: dict) -> bytes:
    cands = sorted(measured(result), key=lambda c: -c["rate_at_slo"])[:TOP_CURVES]
    cands += [c for c in measured(result) if c["baseline"] and c not in cands]
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, c in enumerate(cands):
        color = COLORS[i % len(COLORS)]
        for j, m in enumerate(c.get("measurements", [])):  # one line per ladder: rounds are not one curve
            points = [
                (s["rate"], s["p95_ms"]) for s in m["steps"] if s.get("p95_ms") is not None and s["requests"]
            ]
            if points:
                label = c["key"] if j == 0 else None
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3, color=color, label=label)
    for name, ms in result["slo"].items():
        ax.axhline(ms, color="#999", linestyle="--", linewidth=1)
        ax.annotate(name.replace("_ms", ""), (0, ms), fontsize=7, xytext=(2, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("offered arrival rate (req/s)")
    ax.set_ylabel("p95 latency (ms, log)")
    ax.set_title("Latency against arrival rate: top candidates and the baseline")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return png(fig)


def rate(c: dict) -> str:
    """'1,979', or '≥ 1,979' for a lower bound (every step passed, or the generator's limit)."""
    return ("≥ " if c.get("rate_at_slo_lower_bound") else "") + f"{c['rate_at_slo']:,.0f}"


def config_rows(result: dict) -> list[list[str]]:
    rows = []
    for label, c in (("recommended", result["recommended"]), ("baseline", result["baseline"])):
        if c is None:
            continue
        ci = c.get("rate_at_slo_interval")
        figure = (rate(c) if c["rounds"] else "not measured") + (f" [{ci[0]:.0f}-{ci[1]:.0f}]" if ci else "")
        rows.append(
            [
                label,
                c["server"],
                c["worker_class"],
                str(c["workers"]),
                fmt(c["threads"]),
                figure,
                fmt(c["p95_ms"]),
                fmt(c["memory_mb"]) + ("" if c["fits_memory"] else " (over budget)"),
                c["command"],
            ]
        )
    return rows


def measured_rate(c: dict) -> str:
    """The rate at the objectives; "< 224" when not even the lowest step tried met them."""
    if c["status"] != Status.MEASURED:
        return "-"
    if not c["rate_at_slo"] and c.get("lowest_rate_tried"):
        return f"< {c['lowest_rate_tried']:.0f}"
    return rate(c) + ("" if c.get("recommendable", True) else " (contrast)")


def candidate_rows(result: dict, statuses: tuple[Status, ...]) -> list[list[str]]:
    return [
        [
            c["key"],
            c["status"],
            fmt(c["predicted_rate"]),
            c["predicted_bound"],
            fmt(c["predicted_memory_mb"]),
            measured_rate(c),
            fmt(c["memory_mb"]),
            c["why"],
        ]
        for c in result["candidates"]
        if c["status"] in statuses
    ]


PINNED = "Each candidate ran pinned to the budget's cores"
SHARED = (
    "Each candidate ran on every core of the machine, which the load generator shared: every rate is the "
    "server's share of a machine shared with the load generator"
)
METHOD = (
    "; requests arrived open-loop (Poisson, at a target "
    "rate, never waiting for earlier answers) in steps of rising rate. A step meets the objectives "
    "when every percentile is within its limit and the error rate within the budget; the rate at the "
    "objectives is the highest step of the unbroken passing run from the bottom. Memory is the peak "
    "PSS of the server's process tree. Intervals are min..max over rounds. A rate marked ≥ is a lower "
    "bound: every step tried passed, or the load generator (not the server) was at its limit -- a locust "
    "process saturated its core, or it could not send the target rate (--generator-workers N raises it). "
    "Our own server models (lab-*) are measured as the contrast and recommended only when --servers "
    "names them."
)
PATH_HEAD = ["Path", "Share", "Seen", "Mean in app (ms)", "CPU (ms)", "p50", "p95", "p99", "Errors"]
CONFIG_HEAD = ["Role", "Server", "Class", "Workers", "Threads", "Rate at SLO (req/s)", "p95 (ms)",
               "Memory (MB)", "Command"]  # fmt: skip
CANDIDATE_HEAD = ["Candidate", "Status", "Predicted req/s", "Bound", "Predicted MB", "Measured req/s",
                  "Measured MB", "Why"]  # fmt: skip


def shared(result: dict) -> bool:
    """Whether the load generator shared the server's cores (``tune/sharing.py``; absent in older runs)."""
    return bool((result.get("shared_machine") or {}).get("shared"))


def method(result: dict) -> str:
    return (SHARED if shared(result) else PINNED) + METHOD


def marked(head: list[str], result: dict) -> list[str]:
    """The rate columns say so when each figure is the server's share of a shared machine."""
    if not shared(result):
        return head
    tag = "shared with the generator"
    return [
        f"{h[:-1]}, {tag})" if h.endswith("req/s)") else f"{h} ({tag})" if h == "Measured req/s" else h
        for h in head
    ]


def question(result: dict) -> str:
    b, loads = result["budget"], result["load_average"]
    slo = ", ".join(f"{k.replace('_ms', '')} <= {v:g} ms" for k, v in result["slo"].items())
    return (
        f"App {result['app']}, workload {result['workload']}; objectives {slo}, error rate <= "
        f"{result['max_error_rate']:.2%}; budget {b['cpus']} core(s) ({b['cpus_source']}), "
        f"{b['memory_mb']:.0f} MB ({b['memory_source']}); time budget {result['minutes']:g} min, "
        f"took {result['wall_s']:.0f} s; load average {fmt(loads['before'], '.1f')} before, "
        f"{fmt(loads['after'], '.1f')} after (other work on the machine makes figures noisy)."
        + project_text(result)
        + runtime_text(result)
    )


def project_text(result: dict) -> str:
    """Where the app imported from, with which python and variables (names only), what the image gained."""
    p = result.get("project")
    if not p:
        return ""
    variables = ", ".join(p["env"]) or "none"
    source = f" (from {p['env_file']} and --env)" if p.get("env_file") else ""
    venv = (
        f" (the virtualenv {p['venv']})"
        if p.get("venv") and result["budget"].get("runtime") == "local"
        else ""
    )
    text = (
        f" The app imported from {p['chdir']} with {p['python']}{venv}; its variables: {variables}{source}."
    )
    if p.get("image_added"):
        text += f" Added to the team's image: {'; '.join(p['image_added'])}."
    return text


def runtime_text(result: dict) -> str:
    """For ``--runtime docker``: the envelope each candidate ran in, and what it did to them."""
    b = result["budget"]
    if b.get("runtime") != "docker":
        return ""
    cands = [c for c in result["candidates"] if c.get("runtime")]
    throttled = sum(c["throttled_periods"] or 0 for c in cands)
    periods = sum(c["periods"] or 0 for c in cands)
    killed = [c["key"] for c in cands if c.get("oom_kills")]
    text = (
        f" Each candidate ran in its own container ({b.get('image') or 'the project image'}) under a CPU "
        f"quota of {b['cpus']:g} core(s) and a {b['memory_mb']:.0f} MiB memory limit, the load generator "
        f"outside it; memory is the container's cgroup charge, not PSS. The quota throttled "
        f"{throttled:,} of {periods:,} CPU periods."
    )
    if killed:
        text += f" Killed by the OOM killer, so failed: {', '.join(killed)}."
    return text


def calibration(result: dict) -> str:
    cal = result["calibration"]
    return (
        "One request of the workload, on the mean weighted by the paths' shares: "
        f"{cal['app_ms_mean']:.2f} ms inside the app, {cal['cpu_ms_mean']:.2f} ms of it on a CPU "
        f"(waiting on I/O {cal['io_share']:.0%}; "
        f"{cal.get('runqueue_ms', 0):.1f} ms waiting for a core on this machine, not counted as I/O); the "
        f"server's whole process tree used {cal['server_cpu_ms']:.2f} ms of CPU per request. The model uses "
        "the means (Little's law: requests in flight = rate x mean time in the app). " + memory_text(cal)
    )


def memory_text(cal: dict) -> str:
    if cal.get("app_errors"):
        return "Memory was not measured: the app's own errors ended the run after the first calibration step."
    return (
        f"Memory (PSS): server base {cal['base_mb']:.0f} MB, a worker process {cal['worker_mb']:.0f} MB, "
        f"a thread {cal['thread_mb']:.2f} MB."
    )


def path_rows(result: dict) -> list[list[str]]:
    rows = []
    for p in result["calibration"].get("paths", []):
        pct = p["app_percentiles_ms"]
        errors = ", ".join(f"{n} x {status}" for status, n in sorted(p["errors"].items())) or "-"
        rows.append(
            [p["path"], f"{p['weight']:.0%}", str(p["requests"]), f"{p['app_ms_mean']:.2f}",
             f"{p['cpu_ms_mean']:.2f}", *(fmt(pct.get(q), ".1f") for q in ("p50", "p95", "p99")), errors]
        )  # fmt: skip
    return rows


def generator_text(result: dict) -> str:
    g = result.get("generator") or {}
    how = (
        f"a locust master and {g['workers']} worker process(es) here"
        if g.get("workers")
        else f"a locust master and {g['expect_workers']} worker(s) from elsewhere"
        if g.get("expect_workers")
        else "one locust process"
    )
    busiest = (
        f"; its busiest process used at most {g['busiest_share']:.0%} of a core "
        f"(at {g['busiest_at_rate']:,.0f} req/s offered)"
        if g.get("busiest_share") is not None
        else ""
    )
    limit = result.get("generator_limit_rps")
    bound = (
        f"; {g.get('bound_steps', 0)} step(s) were generator-bound, the generator delivering about "
        f"{limit:,.0f} req/s there (--generator-workers N raises the limit)"
        if limit
        else "; no step was generator-bound"
    )
    sharing = (
        " It ran on the server's cores (--cpus is every core): the ways out are a smaller --cpus, "
        "--runtime docker with a quota below the machine's cores, or --expect-workers N from another machine."
        if shared(result)
        else ""
    )
    return f"The load came from {how}{busiest}{bound}.{sharing}"


def deploy_text(result: dict) -> str:
    files = result.get("deploy") or []
    if not files:
        return "No files to deploy: nothing was recommended."
    return (
        f"{' and '.join(files)} beside this page run the recommended command as a team runs it in "
        "production (the server's own default timeouts) with the budget as each replica's CPU and memory "
        "limits (Kubernetes: the memory request is the measured peak plus headroom), health checks "
        "(startup, readiness, liveness), a pause before SIGTERM and a grace period covering the server's "
        "graceful timeout, a disruption budget of one pod at a time, and the Pod Security Standards' "
        "restricted profile (non-root, read-only root filesystem, no capabilities, seccomp RuntimeDefault)."
    )


def fleet_text(result: dict) -> str:
    """The replicas plan in words, with the autoscaler it sets (empty without --target-rps)."""
    plan = result.get("fleet")
    if not plan:
        return ""
    replica = plan["replica"]
    rate = f"{replica['rate']:,.0f} req/s"
    cpu = (
        f"; the autoscaler scales from {plan['replicas']} to {plan['max_replicas']} replicas at "
        f"{plan['cpu_target_percent']} % CPU: {plan['cpu_at_plan']:.2f} of the {replica['cpus']:g} cores "
        f"requested, the cores measured at {rate} ({replica['cpu_cores']:.2f}) scaled to the planned rate"
        if plan.get("cpu_target_percent") is not None
        else "; no CPU was measured at the rate, so no autoscaler is written"
    )
    return (
        f"{plan['headline']} The target rate is {plan['source']}; each replica is planned at "
        f"{plan['planned_rps']:,.0f} req/s ({plan['utilisation']:.0%} of {rate}), so the fleet holds "
        f"{'at least ' if plan.get('upper_bound') else ''}{plan['served_rps']:,.0f} req/s{cpu}."
    )


def traffic_blocks(result: dict) -> list[Block]:
    """The recording the workload came from (--access-log, --har), and the in-flight limit, when given."""
    blocks: list[Block] = []
    if result.get("traffic"):
        t = dict(result["traffic"])
        blocks += [Heading("Traffic"), *(Para(line) for line in Traffic(**t).lines_text())]
    if result.get("expected_statuses"):
        expected = ", ".join(map(str, result["expected_statuses"]))
        blocks.append(Para(f"Expected answers of every request: {expected}."))
    limit, shared = result.get("in_flight_limit"), result.get("shared_wait")
    if limit or shared:
        blocks.append(Heading("Requests in flight"))
    if limit:
        blocks.append(Para(
            f"--max-in-flight {limit['max_in_flight']}: {limit['kept']} grid shapes within it, "
            f"{limit['capped']} capped with the server's own option, {limit['pruned']} pruned. "
            + " ".join(limit["examples"])
        ))  # fmt: skip
    if shared:
        blocks.append(Para(
            f"On {shared['shape']} at {shared['rate']:g} req/s each request spent {shared['app_ms']:.0f} ms "
            f"inside the app against {shared['alone_ms']:.0f} ms alone: the requests wait inside the app for "
            "something they share (a connection pool, a lock)."
        ))  # fmt: skip
    return blocks


def outline(result: dict) -> tuple[Page, dict[str, bytes]]:
    """The page, and the chart PNGs by file name (linked from the Markdown, embedded in the HTML)."""
    charts = {"rate-vs-memory.png": rate_memory_chart(result), "latency-vs-rate.png": latency_chart(result)}
    pruned = candidate_rows(result, (Status.PRUNED,))
    measured_rows = candidate_rows(result, (Status.MEASURED, Status.FAILED, Status.NOT_REACHED))
    blocks: list[Block] = [
        *(Para(line, "strong" if i == 0 else "") for i, line in enumerate(result["headline"])),
        Table(marked(CONFIG_HEAD, result), config_rows(result)),
        Heading("The question"),
        Para(question(result)),
        Heading("Calibration"),
        Para(calibration(result)),
        Table(PATH_HEAD, path_rows(result)),
        *traffic_blocks(result),
        Heading("Measured"),
        Image("rate at the objectives against memory", "rate-vs-memory.png", charts["rate-vs-memory.png"]),
        Image("p95 against arrival rate", "latency-vs-rate.png", charts["latency-vs-rate.png"]),
        Table(marked(CANDIDATE_HEAD, result), measured_rows),
        Heading("Pruned without measuring"),
        Para(f"{len(pruned)} shapes: over the memory budget, or no better than their family's knee."),
        Table(CANDIDATE_HEAD, pruned),
        Heading("Deploy"),
        *([Para(fleet_text(result))] if result.get("fleet") else []),
        Para(deploy_text(result)),
        Heading("How it was measured"),
        Para(method(result)),
        Para(generator_text(result)),
    ]
    return Page("Which configuration should I run?", "", blocks, "wsgi-lab tune: recommendation"), charts


def write(out: Path, result: dict) -> None:
    """recommendation.md and .html (``document.write``) and the chart PNGs the Markdown links."""
    page, charts = outline(result)
    for name, data in charts.items():
        (out / name).write_bytes(data)
    document.write(out, "recommendation", page)
