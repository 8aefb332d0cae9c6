"""The PostgreSQL pool app under tune's own ladder: more requests in flight than its pool is a shared wait.

A real cluster of Debian's ``postgresql`` (``tests/postgres.py``); skips only when there is none
and ``REQUIRE_POSTGRES`` is unset (``.ci/run`` installs it and sets it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from loadtest.registry import targets
from loadtest.registry.workload import from_paths
from loadtest.tune import candidate, ladder, waits
from loadtest.tune.calibrate import Calibration
from loadtest.tune.candidates import Shape, family
from loadtest.tune.model import predict
from loadtest.tune.settings import Slo
from loadtest.tune.trial import Session, serve_ladder
from tests import postgres

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
POOL, QUERY_S = 2, 0.02


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    if postgres.bindir() is None:
        if postgres.required():
            pytest.fail(f"{postgres.REQUIRE_ENV} is set but there is no PostgreSQL (apt-get install it)")
        pytest.skip(f"no PostgreSQL here ({postgres.REQUIRE_ENV}=1 makes this a failure)")
    with postgres.cluster(max_connections=20) as dsn:
        yield dsn


def measured(tmp_path, dsn: str, threads: int, monkeypatch) -> candidate.Candidate:
    """gunicorn gthread 1 x ``threads`` on the pool app, one ladder above the pool's rate."""
    for var, value in {"PGAPP_DSN": dsn, "PGAPP_POOL": str(POOL), "PGAPP_QUERY_S": str(QUERY_S),
                       "PGAPP_WAIT_S": "0.3"}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    session = Session(
        app="tests.pgapp:app",
        paths=[("/orders?id=3", 1.0)],
        slo=Slo({95.0: 250.0}),
        cores=sorted(os.sched_getaffinity(0))[:1],
        out=tmp_path / f"t{threads}",
        seed=5,
        workload=from_paths([("/orders?id=3", 1.0)]),
    )
    shape = Shape(family(targets.TARGETS["gunicorn-gthread"]), 1, threads)
    rates = [20.0, 200.0]  # (after the warm-up) the pool's pace, then twice its rate (POOL / QUERY_S)
    served = serve_ladder(session, shape, rates, 2.0)
    assert served.run is not None, served.error
    steps = ladder.judge_ladder(rates, 2.0, served.run.records, session.slo.limits, 0.001)
    c = candidate.Candidate(
        shape, predict(shape, CAL, 1, session.slo.limits), status=candidate.Status.MEASURED
    )
    c.rounds = [candidate.Round(rates, steps, None, None, 0.0)]
    return c


CAL = Calibration(cpu_s=0.002, wall_s=QUERY_S + 0.002, app_ms={95.0: 25.0}, base_mb=20, worker_mb=25,
                  thread_mb=0.5, app_cpu_s=0.001)  # fmt: skip


def test_threads_beyond_the_pool_wait_inside_the_app(tmp_path, database, monkeypatch):
    wide = measured(tmp_path, database, 16, monkeypatch)
    found = waits.shared_wait(CAL, [wide], 1)
    assert found is not None and found.key == wide.key, [s.as_dict() for s in wide.rounds[0].steps]
    assert found.app_ms >= waits.GROWTH * CAL.wall_s * 1000.0
    within = measured(tmp_path, database, POOL, monkeypatch)  # no more threads than connections
    assert all((s.app_ms or 0) < waits.GROWTH * CAL.wall_s * 1000.0 for s in within.rounds[0].steps)
