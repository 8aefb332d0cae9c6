"""Synthetic calibrations shared by the tune tests: an I/O-bound, a CPU-bound and a mixed app.

MIXED is the demo's mixed workload as calibrated: three parts a fast JSON path
(~0.5 ms, CPU-bound) and one part a path that waits 100 ms -- its median in the
app is the fast path's, its mean (what Little's law needs) is 26 ms.
"""

from __future__ import annotations

from loadtest.tune.calibrate import Calibration, PathCost

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
MIXED_PATHS = [
    PathCost("/", 0.75, 300, 0.5, 0.45, {50.0: 0.5, 95.0: 0.7, 99.0: 0.9}),
    PathCost("/sleep?s=0.1", 0.25, 100, 101.0, 0.3, {50.0: 101.0, 95.0: 102.0, 99.0: 104.0}),
]
MIXED = Calibration(
    cpu_s=0.0012,
    wall_s=0.75 * 0.5 / 1000 + 0.25 * 101.0 / 1000,
    app_ms={50.0: 0.5, 95.0: 101.0, 99.0: 103.0},
    base_mb=20,
    worker_mb=30,
    thread_mb=0.5,
    app_cpu_s=(0.75 * 0.45 + 0.25 * 0.3) / 1000,
    paths=MIXED_PATHS,
)
