"""The slowed demo app (``--app app.slowed:app``): the same responses, each after extra CPU work.

``make bench``'s diff is shown catching a slowdown with it, so it ships in ``app/``, not in the tests.
"""

from __future__ import annotations

import time

from werkzeug.test import Client

from app import slowed


def test_it_serves_the_demo_app_after_its_extra_work():
    client = Client(slowed.app)
    began = time.perf_counter()
    response = client.get("/")
    took = time.perf_counter() - began
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "Hello Flask"
    assert slowed.EXTRA_SECONDS > 0
    assert took >= slowed.EXTRA_SECONDS  # a lower bound: the busy loop runs before the app


def test_the_documented_app_path_loads():
    from server.cli import load_app

    assert load_app("app.slowed:app") is slowed.app
