"""Every ``python -m loadtest.X`` entry point answers a bad flag with one line and exit status 2.

They share one parser class (``server.oneline.OneLineParser``) with ``python -m server``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT

ENTRY_POINTS = [
    "compare",
    "report",
    "diff",
    "bench",
    "soak",
    "lifecycle",
    "tune",
    "answers",
    "inserver.devserver",
]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_bad_flag_gets_one_line_and_status_2(name):
    """Run as a user runs it: ``python -m loadtest.NAME --no-such-flag``."""
    proc = subprocess.run(
        [sys.executable, "-m", f"loadtest.{name}", "--no-such-flag"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert err.count("\n") == 1 and err.startswith(f"python -m loadtest.{name}: error: "), err
