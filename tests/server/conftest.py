"""Fixtures for the server's tests: ``either_parser`` runs a bytes-in test once per request parser.

``Config()``'s parser is ``auto``; under this fixture ``auto`` means h11 in one run
and httptools (our core over llhttp, :mod:`server.http.core`) in the other, so every
test that builds a core from a ``Config`` proves the rule for both.
"""

from __future__ import annotations

import pytest

from server import config


@pytest.fixture(params=["h11", "httptools"])
def either_parser(request, monkeypatch) -> str:
    if request.param == "h11":
        monkeypatch.setattr(config, "HTTPTOOLS", False)
    elif not config.HTTPTOOLS:
        pytest.skip("httptools is not installed")
    return request.param
