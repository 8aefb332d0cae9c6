"""Synthetic calibrations shared by the tune tests: an I/O-bound and a CPU-bound app."""

from __future__ import annotations

from loadtest.tune.model import Calibration

IO = Calibration(
    cpu_s=0.001,
    wall_s=0.05,
    app_ms={50.0: 50.0, 95.0: 52.0, 99.0: 55.0},
    base_mb=20,
    worker_mb=30,
    thread_mb=0.5,
)
CPU = Calibration(
    cpu_s=0.010,
    wall_s=0.010,
    app_ms={50.0: 10.0, 95.0: 11.0, 99.0: 12.0},
    base_mb=20,
    worker_mb=30,
    thread_mb=0.5,
)
