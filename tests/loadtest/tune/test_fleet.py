"""The replicas plan: ceil(target / (rate x utilisation)), said in one sentence, bounded where the rate is."""

from __future__ import annotations

import pytest

from loadtest.tune import fleet


def replica(rate=640.0, lower_bound=False, cpu_cores=1.6, cpus=2.0, interval=(600.0, 660.0)) -> fleet.Replica:
    return fleet.Replica("gunicorn gthread -w 2 --threads 8", rate, interval, lower_bound, cpu_cores, cpus)


def test_the_count_is_the_target_over_the_planned_rate_rounded_up():
    p = fleet.plan(2000, replica(), slo="p95 <= 250 ms")
    assert p.needed == p.replicas == 5  # 2000 / (640 x 0.7) = 4.46
    assert p.headline() == (
        "To serve 2,000 req/s at p95 <= 250 ms: 5 replicas of gunicorn gthread -w 2 --threads 8, "
        "each measured at 640 req/s [600-660], planned at 70%."
    )
    assert fleet.plan(2000, replica(), slo="p95 <= 250 ms", utilisation=0.5).replicas == 7  # 6.25
    assert fleet.needed(448, 640, 0.7) == 1  # exactly one replica's planned rate: no extra one
    assert fleet.needed(449, 640, 0.7) == 2
    assert fleet.needed(1, 640, 0.7) == 1


def test_a_floor_makes_the_count_an_upper_bound_and_says_so():
    p = fleet.plan(2000, replica(lower_bound=True, interval=None), slo="p95 <= 250 ms")
    assert p.upper_bound and p.replicas == 5
    text = p.headline()
    assert "at most 5 replicas" in text and "measured at 640 req/s or more" in text and "upper bound" in text
    assert "[" not in text  # no interval: one round is a point


def test_max_replicas_caps_the_files_and_the_headline_says_what_they_serve():
    p = fleet.plan(2000, replica(), slo="p95 <= 250 ms", max_replicas=3)
    assert (p.needed, p.replicas, p.max_replicas, p.capped) == (5, 3, 3, True)
    assert "5 are needed but --max-replicas is 3: they serve about 1,344 req/s" in p.headline()
    uncapped = fleet.plan(2000, replica(), slo="p95 <= 250 ms")
    assert uncapped.max_replicas == fleet.MAX_REPLICAS_FACTOR * 5 and not uncapped.capped


def test_the_autoscaler_target_is_the_planned_cpu_as_a_share_of_the_request():
    p = fleet.plan(2000, replica(cpu_cores=1.6, cpus=2.0), slo="p95 <= 250 ms")
    assert p.cpu_at_plan == pytest.approx(1.12)  # 1.6 cores at 640 req/s, x 0.7
    assert p.cpu_target_percent == 56
    assert fleet.plan(2000, replica(cpu_cores=0.05), slo="x").cpu_target_percent == fleet.MIN_CPU_TARGET
    assert fleet.plan(2000, replica(cpu_cores=None), slo="x").cpu_target_percent is None


@pytest.mark.parametrize(
    ("target", "kwargs", "words"),
    [
        (0, {}, "target rate must be positive"),
        (2000, {"utilisation": 0}, "utilisation must be in"),
        (2000, {"utilisation": 1.2}, "utilisation must be in"),
        (2000, {"max_replicas": 0}, "--max-replicas must be at least 1"),
    ],
)
def test_bad_input_is_one_line(target, kwargs, words):
    with pytest.raises(fleet.PlanError, match=words):
        fleet.plan(target, replica(), slo="x", **kwargs)


def test_no_rate_at_the_objectives_plans_nothing():
    with pytest.raises(fleet.PlanError, match="no rate met the objectives"):
        fleet.plan(2000, replica(rate=0.0), slo="x")


def test_the_plan_reads_from_a_recommendation_and_round_trips_as_json():
    import json

    recommended = {
        "server": "gunicorn",
        "worker_class": "gthread",
        "workers": 2,
        "threads": 8,
        "rate_at_slo": 640.0,
        "rate_at_slo_interval": [600.0, 660.0],
        "rate_at_slo_lower_bound": False,
        "cpus": 2,
    }
    rounds = [{"server_cpu_cores": 1.5}, {"server_cpu_cores": None}, {"server_cpu_cores": 1.7}]
    r = fleet.replica_of(recommended, rounds)
    assert r == fleet.Replica("gunicorn gthread -w 2 --threads 8", 640.0, (600.0, 660.0), False, 1.7, 2.0)
    p = fleet.plan(2000, r, slo=fleet.slo_text({"p95_ms": 250.0}), source="the access log's busiest minute")
    data = json.loads(json.dumps(p.as_dict()))
    assert data["replicas"] == 5 and data["replica"]["interval"] == [600.0, 660.0]
    assert data["source"] == "the access log's busiest minute" and data["headline"] == p.headline()
    assert fleet.shape_text("gunicorn", "gevent", 4, None) == "gunicorn gevent -w 4"


def test_the_plan_of_a_record_and_the_pages_words_for_it():
    from loadtest.reporting import recommendation as rendering

    record = {
        "slo": {"p95_ms": 250.0},
        "recommended": {
            "key": "gunicorn-gthread w2 t8",
            "server": "gunicorn",
            "worker_class": "gthread",
            "workers": 2,
            "threads": 8,
            "rate_at_slo": 640.0,
            "rate_at_slo_interval": [600.0, 660.0],
            "cpus": 2,
        },
        "candidates": [
            {"key": "other", "measurements": [{"server_cpu_cores": 0.1}]},
            {"key": "gunicorn-gthread w2 t8", "measurements": [{"server_cpu_cores": 1.6}]},
        ],
    }
    p = fleet.for_record(record, 2000, max_replicas=9)
    assert p is not None and p.replicas == 5 and p.replica.cpu_cores == 1.6 and p.cpu_target_percent == 56
    text = rendering.fleet_text({**record, "fleet": p.as_dict()})
    assert text.startswith(p.headline()) and "from 5 to 9 replicas at 56 % CPU" in text
    assert "holds 2,240 req/s" in text  # 5 x 448
    assert rendering.fleet_text(record) == ""
    assert fleet.for_record({**record, "recommended": None}, 2000) is None


def test_the_target_is_the_flag_else_the_recordings_busiest_minute():
    assert fleet.target(2000, 350.0, "combined") == (2000, fleet.SOURCE_FLAG)
    assert fleet.target(None, 350.0, "combined") == (350.0, "the access log's busiest minute (350.0 req/s)")
    assert fleet.target(None, 12.5, "har")[1].startswith("the HAR recording's busiest minute")
    assert fleet.target(None, None, "combined") is None and fleet.target(None, 0.0) is None


def test_an_access_log_plans_for_its_busiest_minute(tmp_path):
    """No --target-rps: the busiest clock minute of --access-log is the rate, and the plan says so."""
    from loadtest.tune import cli, main

    line = '127.0.0.1 - - [08/Dec/2026:03:{m:02d}:{s:02d} +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8"\n'
    log = tmp_path / "access.log"
    log.write_text("".join(line.format(m=m, s=s % 60) for m, n in ((10, 90), (11, 30)) for s in range(n)))
    settings = cli.parse(["--access-log", str(log), "--max-replicas", "4", "--utilisation", "0.5"])
    assert settings.target_rps is None and settings.traffic.busiest_minute_rps == 1.5  # 90 in 03:10
    record = {
        "slo": {"p95_ms": 250.0},
        "recommended": {"key": "k", "server": "gunicorn", "worker_class": "gthread", "workers": 1,
                        "threads": 4, "rate_at_slo": 1.0, "cpus": 1},
        "candidates": [],
    }  # fmt: skip
    p = main.plan_fleet(settings, record)
    assert p is not None and p.source.startswith("the access log's busiest minute (1.5 req/s)")
    assert (p.needed, p.replicas, p.max_replicas) == (3, 3, 4)  # 1.5 / (1.0 x 0.5)
