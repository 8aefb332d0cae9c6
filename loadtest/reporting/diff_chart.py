"""``python -m loadtest.diff``'s chart: A and B side by side per scenario."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtest.reporting import charts


def side_by_side(scenario: str, rows: list[dict], names: tuple[str, str], labels: dict[str, str]) -> bytes:
    """req/s and p95 of A and B per target (``diff.json``'s rows), bars with interval whiskers."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    several_users = len({r["users"] for r in rows}) > 1
    ticks = [f"{r['target']} @{r['users']}" if several_users else r["target"] for r in rows]
    width = 0.38
    for ax, metric in zip(axes, ("rps", "p95_ms"), strict=True):
        for k, side in enumerate(("a", "b")):
            xs = [i + (k - 0.5) * width for i in range(len(rows))]
            values = [r["metrics"][metric][side] for r in rows]
            cis = [r["metrics"][metric][side + "_ci95"] for r in rows]
            ax.bar(
                xs,
                [v or 0 for v in values],
                width,
                yerr=charts.yerr(values, cis),
                capsize=3,
                label=f"A: {names[0]}" if side == "a" else f"B: {names[1]}",
                color=charts.COLORS[k],
            )
        for i, r in enumerate(rows):
            if r["metrics"][metric]["significant"]:
                top = max(r["metrics"][metric]["a"] or 0, r["metrics"][metric]["b"] or 0)
                ax.annotate("*", (i, top), ha="center", va="bottom", fontsize=14)
        ax.set_xticks(range(len(rows)), ticks, rotation=30, ha="right")
        ax.set_title(f"{scenario}: {labels[metric]} (* = significant)")
        ax.legend(frameon=False)
    fig.tight_layout()
    return charts.png(fig)
