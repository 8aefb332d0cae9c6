"""``make bench`` for real, kept short: two of our targets, one round of one second, with wrk.

The figures are the machine's and are not asserted; what is asserted is that
the bench measures (requests were counted, CPU per request is positive), writes
its run directory, and that the pinned variant is started pinned
(that the pin holds for every thread is tests/server/test_modes.py's job).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loadtest.registry import targets
from tests.support import run_module

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_a_short_bench_measures_and_writes_its_run(tmp_path: Path):
    out = tmp_path / "bench"
    result = run_module(
        "loadtest.bench",
        *("--only", "lab-single", "lab-threaded-pinned"),
        *("--rounds", "1", "-d", "1", "--warmup", "0", "--out", str(out)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads((out / "bench.json").read_text())
    rows = {row["target"]: row for row in doc["rows"]}
    for name in ("lab-single", "lab-threaded-pinned"):
        (measured,) = rows[name]["per_round"]
        assert measured["requests"] > 0 and measured["rps"] > 0 and measured["cpu_us"] > 0, measured
        assert not measured["errors"], measured
    assert rows["lab-threaded-pinned"]["command_args"][-2:] == ["--cpu-affinity", targets.first_cpu()]
    assert (out / "env.json").is_file() and (out / "rerun.sh").is_file()
    assert "lab-threaded-pinned" in result.stdout
