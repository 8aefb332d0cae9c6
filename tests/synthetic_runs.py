"""Synthetic comparison rows and run directories, shaped like the ones loadtest.compare writes.

Figures are chosen by the test; medians and intervals come from loadtest.measure.stats,
as they do in a real run, so a test states only the per-round numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

from loadtest.measure import stats
from loadtest.registry.records import ComparisonRow

NO_ERRORS = {"non_2xx": 0, "connection_refused": 0, "connection_reset": 0, "timeout": 0, "other": 0}


def row(
    scenario: str,
    target: str,
    rps: list[float],
    users: int = 10,
    p95: list[float] | None = None,
    **extra,
) -> dict:
    """A row measured in len(rps) rounds; latency follows throughput unless p95 is given."""
    per_round = []
    for i, value in enumerate(rps):
        latency = users / value * 1000.0
        per_round.append(
            {
                "round": i + 1,
                "position": 1,
                "rps": value,
                "p50_ms": latency * 0.9,
                "p95_ms": (p95[i] if p95 else latency * 1.2),
                "p99_ms": latency * 1.5,
                "avg_ms": latency,
                "server_cpu_cores": 0.5,
                "server_mem_mb": 60.0,
                "generator_cpu": 0.3,
                "max_in_flight": min(users, 4),
                "requests": int(value * 5),
                "failures": 0,
                "load_before": 0.5,
                "load_after": 0.7,
                "error": "",
            }
        )
    out = {
        "scenario": scenario,
        "target": target,
        "users": users,
        "kind": "local",
        "url": "http://127.0.0.1:8001",
        "command": f"python -m {target}",
        "explanation": f"{target} explained",
        "capacity": 4,
        "error": "",
        "notes": [],
        "rounds": len(rps),
        "per_round": per_round,
        "pids": 1,
        "threads": 4,
        "max_threads_per_pid": 4,
        "with_identity": sum(r["requests"] for r in per_round),
        "requests": sum(r["requests"] for r in per_round),
        "failures": 0,
        "errors": dict(NO_ERRORS),
        "latency_source": "exact percentiles of our own per-request records",
        "generator_saturated": False,
        "generator_headroom": 0.7,
        "generator_processes": 1,
        "machine_cpu": 0.4,
        "machine_bound": False,
        "cpu_limit": None,
        "unstable_reason": "",
        **stats.summarize(per_round, stats.METRICS),
    }
    out["little"] = {
        "in_flight_measured": out["max_in_flight"],
        "in_flight_little": out["rps"] * out["avg_ms"] / 1000,
    }
    out.update(extra)
    return out


def typed_row(scenario: str, target: str, rps: list[float], **extra) -> ComparisonRow:
    """:func:`row` read back as the run record does."""
    return ComparisonRow.from_dict(row(scenario, target, rps, **extra))


def old_row(scenario: str, target: str, rps: float, users: int = 10, **extra) -> dict:
    """A row as written before rounds existed: one measurement, no interval, no per_round."""
    return {
        "scenario": scenario,
        "target": target,
        "users": users,
        "kind": "local",
        "url": "http://127.0.0.1:8001",
        "explanation": "",
        "capacity": 4,
        "error": "",
        "notes": [],
        "requests": int(rps * 8),
        "failures": 0,
        "rps": rps,
        "p50_ms": 5.0,
        "p95_ms": 9.0,
        "p99_ms": 12.0,
        "avg_ms": 6.0,
        "pids": 1,
        "threads": 1,
        "max_threads_per_pid": 1,
        "max_in_flight": 1,
        "with_identity": int(rps * 8),
        "server_cpu_cores": 0.4,
        "generator_cpu": 0.3,
        "generator_saturated": False,
        **extra,
    }


def env(rounds: int = 3) -> dict:
    return {
        "started": "2026-11-24T14:00:00+00:00",
        "finished": "2026-11-24T14:05:00+00:00",
        "python": "3.11.2 (main)",
        "cpu_model": "Test CPU",
        "cpu_count": 2,
        "cgroup_cpu_limit": None,
        "load_before": 0.5,
        "load_after": 0.9,
        "git_commit": "abc1234",
        "versions": {"locust": "2.40"},
        "argv": ["--rounds", str(rounds)],
        "seed": 7,
        "parameters": {
            "users": 10,
            "duration": 3,
            "rounds": rounds,
            "seed": 7,
            "app": "app:app",
            "sleep_s": 0.5,
            "cpu_ms": 20,
            "hello_path": "/",
            "spawn_rate": 10,
        },
        "rerun": "./rerun.sh",
    }


def write_run(path: Path, rows: list[dict], environment: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    environment = environment or env()
    (path / "summary.json").write_text(json.dumps({"parameters": environment["parameters"], "rows": rows}))
    (path / "env.json").write_text(json.dumps(environment))
    return path
