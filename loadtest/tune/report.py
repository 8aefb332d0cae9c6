"""``recommendation.json``: the record every rendering reads.  Pure.

``recommended`` and ``baseline`` carry what a deployer needs (``server``,
``worker_class``, ``workers``, ``threads``, ``command``, ``rate_at_slo``,
``p95_ms``, ``memory_mb``, ``cpus``) plus the interval and rounds behind the
figure; ``candidates`` lists every shape predicted, measured or pruned, with why.
"""

from __future__ import annotations

from loadtest.tune.budget import TuneArgs
from loadtest.tune.model import Calibration
from loadtest.tune.recommend import Verdict
from loadtest.tune.search import Candidate


def configuration(c: Candidate, app: str, cpus: int, memory_mb: float) -> dict:
    step = c.at_slo()
    return {
        "key": c.key,
        "target": c.shape.family.name,
        "server": c.shape.family.server,
        "worker_class": c.shape.family.worker_class,
        "workers": c.shape.workers,
        "threads": c.shape.threads,
        "command": c.shape.deploy_command(app),
        "rate_at_slo": c.rate_at_slo,
        "rate_at_slo_interval": list(c.interval) if c.interval and len(c.rates()) > 1 else None,
        "rounds": len(c.rates()),
        "p95_ms": step.p_ms.get(95.0) if step else None,
        "p99_ms": step.p_ms.get(99.0) if step else None,
        "memory_mb": c.memory_mb,
        "fits_memory": c.fits(memory_mb),
        "cpus": cpus,
    }


def candidate(c: Candidate, app: str, cpus: int, memory_mb: float) -> dict:
    out = {
        **configuration(c, app, cpus, memory_mb),
        "status": c.status,
        "why": c.why,
        "baseline": c.is_baseline,
        "predicted_rate": c.prediction.rate,
        "predicted_bound": c.prediction.bound,
        "predicted_memory_mb": c.prediction.memory_mb,
        # when no step met the objectives the figure is "below the lowest rate tried", not zero
        "lowest_rate_tried": min((r.rates[0] for r in c.rounds if r.rates), default=None),
    }
    out |= envelope_fields(c)
    if c.rounds:
        out["measurements"] = [
            {
                "rates": r.rates,
                "rate_at_slo": r.figure()[0],
                "topped_out": r.figure()[2],
                "memory_mb": r.memory_mb,
                "server_cpu_cores": r.cpu_cores,
                "seconds": r.seconds,
                "error": r.error,
                "notes": r.notes,
                "steps": [s.as_dict() for s in r.steps],
                "box": r.box,
            }
            for r in c.rounds
        ]
    return out


def envelope_fields(c: Candidate) -> dict:
    """What confined the candidate, over its rounds: runtime, quota, limit, CPU throttling, OOM kills.

    Counts are sums over the rounds; None where the runtime imposes no quota or cannot see OOM kills.
    """
    boxes = [r.box for r in c.rounds if r.box]
    if not boxes:
        return {}
    throttling = [b["throttling"] for b in boxes if b.get("throttling")]
    kills = [b["oom_kills"] for b in boxes if b.get("oom_kills") is not None]

    def total(name: str) -> float | None:
        return sum(t.get(name, 0) for t in throttling) if throttling else None

    return {
        "runtime": boxes[-1]["runtime"],
        "cpu_quota": boxes[-1]["cpu_quota"],
        "memory_limit_mb": boxes[-1]["memory_limit_mb"],
        "periods": total("periods"),
        "throttled_periods": total("throttled_periods"),
        "throttled_s": total("throttled_s"),
        "oom_kills": sum(kills) if kills else None,
    }


def document(
    args: TuneArgs,
    cal: Calibration,
    cands: list[Candidate],
    v: Verdict,
    wall_s: float,
    loads: tuple[float | None, float | None],
) -> dict:
    b = args.budget
    order = {"measured": 0, "failed": 1, "not reached": 2, "pruned": 3, "pending": 4}
    ranked = sorted(cands, key=lambda c: (order.get(c.status, 5), -c.rate_at_slo, -c.prediction.rate))
    return {
        "headline": v.headline,
        "recommended": configuration(v.recommended, args.app, b.cpus, b.memory_mb) if v.recommended else None,
        "baseline": configuration(v.baseline, args.app, b.cpus, b.memory_mb),
        "margin": v.margin,
        "within_intervals": v.within_intervals,
        "why": v.why,
        "binding": v.binding,
        "app": args.app,
        "workload": args.workload(),
        "paths": [{"path": p, "weight": w} for p, w in args.paths],
        "locustfile": str(args.locustfile) if args.locustfile else None,
        "slo": {f"p{q:g}_ms": ms for q, ms in sorted(args.slo.limits.items())},
        "max_error_rate": args.slo.max_error_rate,
        "budget": {
            "cpus": b.cpus,
            "cpus_source": b.cpus_source,
            "memory_mb": b.memory_mb,
            "memory_source": b.memory_source,
            "runtime": args.runtime,
            "image": args.image,
        },
        "calibration": {
            "cpu_ms": cal.cpu_s * 1000.0,
            "app_ms": cal.wall_s * 1000.0,
            "app_percentiles_ms": {f"p{q:g}": v for q, v in cal.app_ms.items()},
            "io_share": cal.io_share,
            "runqueue_ms": cal.queue_s * 1000.0,
            "base_mb": cal.base_mb,
            "worker_mb": cal.worker_mb,
            "thread_mb": cal.thread_mb,
            "memory_scale": cal.scale,
        },
        "minutes": args.minutes,
        "wall_s": wall_s,
        "seed": args.seed,
        "load_average": {"before": loads[0], "after": loads[1]},
        "candidates": [candidate(c, args.app, b.cpus, b.memory_mb) for c in ranked],
    }
