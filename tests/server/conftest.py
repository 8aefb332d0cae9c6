"""Fixtures for the server's tests: ``either_parser`` runs a bytes-in test once per request parser.

``Config()``'s parser is ``auto``; under this fixture ``auto`` means h11 in one run
and httptools (the fast path, :mod:`server.fastpath`) in the other, so every
test that builds a core from a ``Config`` proves the rule for both.
"""

from __future__ import annotations

import pytest

from server import fastpath


@pytest.fixture(params=["h11", "httptools"])
def either_parser(request, monkeypatch) -> str:
    if request.param == "h11":
        monkeypatch.setattr(fastpath, "AVAILABLE", False)
    elif not fastpath.AVAILABLE:
        pytest.skip("httptools is not installed")
    return request.param
