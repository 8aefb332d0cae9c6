"""loadtest.lifecycle: SIGTERM with requests in flight and keep-alive, on granian and uWSGI for real."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from loadtest.lifecycle import main as lifecycle
from loadtest.registry import targets
from tests.support import ROOT


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--targets", "nope"], "unknown target"),
        (["--targets", "uwsgi", "--in-flight", "0"], "--in-flight"),
        (["--targets", "uwsgi", "--sleep", "60"], "--sleep"),
        (["--targets", "uwsgi", "--options", "nope=--processes 2"], "--options"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(args, problem):
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest.lifecycle", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert problem in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_uwsgi_finishes_what_its_workers_hold_and_drops_the_queue(tmp_path):
    """gracefully_kill_them_all on SIGTERM: the 4 requests inside the 4 workers come back 200."""
    row = lifecycle.sigterm(targets.TARGETS["uwsgi"], n=6, sleep_s=2.0, settle_s=1.0, log_dir=tmp_path)
    assert row["exit"] == 0
    assert row["completed"] == 4 and row["pids"] == 4, row
    assert sum(row["lost"].values()) == 2, row  # waiting in the listen queue, never accepted


@pytest.mark.slow
def test_granian_finishes_what_it_accepted_and_refuses_new_connections(tmp_path):
    row = lifecycle.sigterm(targets.TARGETS["granian"], n=4, sleep_s=2.0, settle_s=1.0, log_dir=tmp_path)
    assert (row["exit"], row["completed"], row["lost"]) == (0, 4, {}), row
    assert row["late"] == "ConnectionRefusedError", row


@pytest.mark.slow
@pytest.mark.parametrize(("name", "connections"), [("granian", 1), ("uwsgi", 3)])
def test_keep_alive(tmp_path, name, connections):
    """granian keeps the connection; uWSGI's --http-socket closes each one without a Connection: close."""
    row = lifecycle.keep_alive(targets.TARGETS[name], tmp_path)
    assert row["connections"] == connections, row
    assert row["said_close"] == 0, row
    assert row["silent_close"] == (0 if connections == 1 else 3), row


def test_a_target_that_fails_to_start_is_reported_with_its_stderr(tmp_path):
    broken = replace(targets.TARGETS["lab-single"], options=("--no-such-option",))
    row = lifecycle.sigterm(broken, n=2, sleep_s=1.0, settle_s=0.5, log_dir=tmp_path)
    assert row["error"].startswith("failed to start: exited with status 2"), row
    assert "--no-such-option" in row["error"]  # the server's own one-line error, from its stderr
    assert lifecycle.sigterm_line(row).startswith("lab-single: SIGTERM not tried: FAILED -- failed to start")
    assert "FAILED" in lifecycle.keep_alive_line(lifecycle.keep_alive(broken, tmp_path))
