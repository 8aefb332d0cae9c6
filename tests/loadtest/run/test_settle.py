"""``environment.settle``: compare --settle waits for the load average its own start-up raised."""

from __future__ import annotations

import os

from loadtest.run import environment


def loads(*values: float):
    """A load-average reader returning ``values`` in turn, then the last one for ever."""
    seen = list(values)
    return lambda: seen.pop(0) if len(seen) > 1 else seen[0]


def test_it_waits_until_the_load_is_within_the_cores(capsys):
    cores = os.cpu_count() or 1
    assert environment.settle(5, every_s=0.01, load=loads(3.0 * cores, 2.0 * cores, 0.5 * cores))
    assert "settled within 5 s" in capsys.readouterr().out


def test_it_gives_up_at_its_limit_and_says_so(capsys):
    cores = os.cpu_count() or 1
    assert not environment.settle(0.05, every_s=0.01, load=loads(3.0 * cores))
    assert "still busy after 0.05 s" in capsys.readouterr().out
    assert environment.settle(0, load=loads(0.0)) and capsys.readouterr().out == ""
