"""``python -m loadtest.soak``'s chart: memory and open files of each mode's tree over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


class Sample(Protocol):
    """One sample of a process tree (``soak``'s): seconds under load, RSS bytes, open fds."""

    t: float
    rss: int
    fds: int


def write(path: Path, runs: Mapping[str, Sequence[Sample]]) -> None:
    """RSS and open fds of each mode's process tree over the minutes under load, as a PNG at ``path``."""
    fig, (rss_ax, fd_ax) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for mode, samples in runs.items():
        t = [s.t / 60 for s in samples]
        rss_ax.plot(t, [s.rss / 2**20 for s in samples], label=mode)
        fd_ax.plot(t, [s.fds for s in samples], label=mode)
    rss_ax.set_ylabel("RSS of the process tree (MB)")
    fd_ax.set_ylabel("open fds (process tree)")
    fd_ax.set_xlabel("minutes under load")
    rss_ax.legend(loc="upper left", fontsize="small")
    rss_ax.set_title("wsgi-lab soak: mixed locust load per mode")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
