"""The scenarios: each one's locust user classes, and the slow scenario's constants.

Shared by the locustfile and the compare runner without importing locust (importing it
monkey-patches the standard library with gevent; the runner uses real threads and subprocesses).
"""

from __future__ import annotations

# scenario name -> locust user classes (space-separated) in loadtest/generator/locustfile.py
SCENARIO_CLASSES = {
    "hello": "HelloUser",
    "io": "IoUser",
    "cpu": "CpuUser",
    "mixed": "MixedUser",
    "slow": "SlowClient SlowNormalUser",
}
SLOW_CLIENTS = 200  # slow scenario: connections held by slow clients, above every bounded model's slots
SLOW_HEAD_START_S = 2.0  # slow scenario: normal users start this long after the slow clients
SLOW_NORMAL_TIMEOUT_S = 5.0  # slow scenario: a normal user gives up on a request after this (a timeout)
