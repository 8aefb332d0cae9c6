"""The CPU-per-request fit: idle work is the intercept, not a cost per request (synthetic points)."""

from __future__ import annotations

import pytest

from loadtest.tune.cpufit import fit, points, warm


def test_idle_work_is_left_out_of_the_cost_per_request():
    # a server idling at 0.02 cores that costs 1.37 ms a request, seen at 5..40 req/s
    points = [(r, 0.02 + r * 0.00137) for r in (5.0, 10.0, 20.0, 40.0)]
    f = fit(points)
    assert f is not None and f.cpu_s == pytest.approx(0.00137) and f.idle_cores == pytest.approx(0.02)
    # the plain division charges the idle work to the requests: 1.87 ms at 40 req/s, 5.4 ms at 5
    assert points[-1][1] / points[-1][0] > 1.3 * f.cpu_s


def test_noise_below_zero_idle_refits_through_the_origin():
    f = fit([(10.0, 0.009), (20.0, 0.021), (40.0, 0.041)])
    assert f is not None and f.idle_cores == 0.0 and f.cpu_s == pytest.approx(0.00103, rel=0.02)


@pytest.mark.parametrize(
    "points",
    [
        [(10.0, 0.01), (20.0, 0.02)],  # too few
        [(10.0, 0.01), (11.0, 0.011), (12.0, 0.012)],  # rates too close
        [(10.0, 0.05), (20.0, 0.04), (40.0, 0.02)],  # falling: noise, no cost to read
    ],
)
def test_points_that_cannot_say_give_no_fit(points):
    assert fit(points) is None


def test_the_warm_up_step_is_left_out_of_the_means_and_the_points():
    by_step = {
        0: [{"t": 0.0, "ok": True, "name": "s0 /"}, {"t": 1.0, "ok": True, "name": "s0 /"}],
        1: [{"t": 10.0 + i / 10, "ok": True} for i in range(11)],  # 11 answers over 1 s
        2: [{"t": 20.0 + i / 20, "ok": i % 2 == 0} for i in range(21)],  # 11 of 21 answered over 1 s
    }
    assert len(warm(by_step, 1)) == 32
    seen = []

    def cores(start, end):
        seen.append((start, end))
        return 0.25

    assert points(by_step, 1, cores) == [(pytest.approx(11.0), 0.25), (pytest.approx(11.0), 0.25)]
    assert seen == [(10.0, 11.0), (20.0, 21.0)]
