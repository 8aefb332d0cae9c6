"""The one process-tree walk and sampler: a gone root is an empty tree, a gone child is skipped."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from loadtest.inserver.tree import Sampler, members, read_each
from tests.support import stop

SLEEPER = "import time; time.sleep(30)"
# The parent reaps its child when it exits, so a killed child is gone, not a zombie.
PARENT = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {SLEEPER!r}]).wait(); {SLEEPER}"


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_the_tree_holds_the_root_and_its_children_and_a_gone_root_is_empty():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], start_new_session=True)
    try:
        tree = eventually(lambda: [t for t in [members(parent.pid)] if len(t) == 2])
        tree = tree[0] if tree else []
        assert tree and tree[0].pid == parent.pid
        tree[1].kill()
        assert eventually(lambda: not tree[1].is_running())
        read = read_each(tree, psutil.Process.num_threads)
        assert [p.pid for p, _ in read] == [parent.pid]  # the exited child is skipped, not an error
    finally:
        stop(parent)
    assert members(parent.pid) == []


def test_the_sampler_samples_at_start_and_keeps_what_is_not_none():
    values = iter([1, None, 2])
    sampler = Sampler(lambda: next(values, None), interval=0.01, name="test-sampler").start()
    eventually(lambda: len(sampler.samples) == 2)
    sampler.stop()
    assert sampler.samples == [1, 2]
