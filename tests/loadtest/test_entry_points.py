"""Every ``python -m loadtest.X`` entry point answers a bad flag with one line and exit status 2.

They share one parser class (``server.oneline.OneLineParser``) with ``python -m server``.
"""

from __future__ import annotations

import importlib

import pytest

ENTRY_POINTS = ["compare", "report", "diff", "bench", "soak", "lifecycle", "inserver.devserver"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_bad_flag_gets_one_line_and_status_2(name, capsys):
    module = importlib.import_module(f"loadtest.{name}")
    with pytest.raises(SystemExit) as stopped:
        module.main(["--no-such-flag"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"python -m loadtest.{name}: error: "), err
