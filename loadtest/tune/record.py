"""``recommendation.json``: the record every rendering reads.  Pure.

``recommended`` and ``baseline`` carry what a deployer needs (``server``,
``worker_class``, ``workers``, ``threads``, ``command``, ``rate_at_slo``,
``p95_ms``, ``memory_mb``, ``cpus``) plus the interval and rounds behind the
figure, what confined it (as each candidate does), and
``rate_at_slo_lower_bound`` when the figure is a floor (every step passed, or
the load generator's limit: ``generator_limit_rps`` at the top);
``candidates`` lists every shape predicted, measured or pruned, with why,
and what confined it (``runtime``, ``cpu_quota``, ``memory_limit_mb``, CPU
throttling, ``oom_kills``: ``envelope_fields``); ``calibration`` the
workload's mean costs and each path's.
"""

from __future__ import annotations

from dataclasses import asdict

from loadtest.registry import records
from loadtest.tune import project
from loadtest.tune.calibrate import Calibration
from loadtest.tune.candidate import Candidate, Round
from loadtest.tune.recommend import Verdict
from loadtest.tune.settings import Settings
from loadtest.tune.sharing import Sharing


def configuration(c: Candidate, app: str, cpus: float, memory_mb: float) -> dict:
    step = c.at_slo()
    return {
        "key": c.key,
        "target": c.shape.family.name,
        "server": c.shape.family.server,
        "worker_class": c.shape.family.worker_class,
        "kind": c.shape.family.kind,
        "workers": c.shape.workers,
        "threads": c.shape.threads,
        "cap": c.shape.cap,
        "slots": c.shape.slots,
        "command": c.shape.deploy_command(app),
        "rate_at_slo": c.rate_at_slo,
        "rate_at_slo_lower_bound": c.lower_bound,
        "at_generator_limit": c.at_generator_limit,
        "rate_at_slo_interval": list(c.interval) if c.interval and len(c.rates()) > 1 else None,
        "rounds": len(c.rates()),
        "p95_ms": step.p_ms.get(95.0) if step else None,
        "p99_ms": step.p_ms.get(99.0) if step else None,
        "memory_mb": c.memory_mb,
        "fits_memory": c.fits(memory_mb),
        "cpus": cpus,
        **envelope_fields(c),
    }


def measurement(r: Round) -> dict:
    return {
        "rates": r.rates,
        "rate_at_slo": r.figure()[0],
        "topped_out": r.figure()[2],
        "lower_bound": r.lower_bound,
        "at_generator_limit": r.at_generator_limit,
        "generator_limit_rps": r.generator_limit,
        "memory_mb": r.memory_mb,
        "server_cpu_cores": r.cpu_cores,
        "seconds": r.seconds,
        "error": r.error,
        "notes": r.notes,
        "steps": [s.as_dict() for s in r.steps],
        "box": box(r),
        "start_s": r.start_s,
    }


def candidate(c: Candidate, args: Settings) -> dict:
    b = args.budget
    out = {
        **configuration(c, str(args.app), b.cpus, b.memory_mb),
        "status": c.status,
        "why": c.why,
        "baseline": c.is_baseline,
        "recommendable": c.recommendable,
        "predicted_rate": c.prediction.rate,
        "predicted_bound": c.prediction.bound,
        "predicted_memory_mb": c.prediction.memory_mb,
        # when no step met the objectives the figure is "below the lowest rate tried", not zero
        "lowest_rate_tried": min((r.rates[0] for r in c.rounds if r.rates), default=None),
        # the rate is the server's share of a machine shared with the load generator (sharing.py)
        "shared_machine": Sharing.of(b.cpus, args.generator.expect).shared,
    }
    if c.rounds:
        out["measurements"] = [measurement(r) for r in c.rounds]
    return out


def box(r: Round) -> dict[str, object]:
    """What confined the server in one round and what that did ({} when the runner told nothing)."""
    e = r.envelope
    if e is None:
        return {}
    out: dict[str, object] = {
        "runtime": e.runtime,
        "cpu_quota": e.cpu_quota,
        "cpu_quota_us": e.cpu_quota_us,
        "cpu_period_us": e.cpu_period_us,
        "memory_limit_mb": e.memory_limit_mb,
        "oom_kills": e.oom_kills,
        "oom_killed": e.oom_killed,
    }
    if r.throttling is not None:
        out["throttling"] = r.throttling
        out["throttling_by_step"] = r.throttling_by_step
    return out


def envelope_fields(c: Candidate) -> dict:
    """What confined the candidate, over its rounds: runtime, quota, limit, CPU throttling, OOM kills.

    Counts are sums over the rounds; None where the runtime imposes no quota or cannot see OOM kills.
    """
    boxed = [r for r in c.rounds if r.envelope is not None]
    if not boxed:
        return {}
    last = boxed[-1].envelope
    assert last is not None
    throttling = [r.throttling for r in boxed if r.throttling]
    kills = [r.envelope.oom_kills for r in boxed if r.envelope and r.envelope.oom_kills is not None]

    def total(name: str) -> float | None:
        return sum(t.get(name, 0) for t in throttling) if throttling else None

    return {
        "runtime": last.runtime,
        "cpu_quota": last.cpu_quota,
        "memory_limit_mb": last.memory_limit_mb,
        "periods": total("periods"),
        "throttled_periods": total("throttled_periods"),
        "throttled_s": total("throttled_s"),
        "oom_kills": sum(kills) if kills else None,
    }


def calibration(cal: Calibration) -> dict:
    return {
        "app_ms_mean": cal.wall_s * 1000.0,
        "cpu_ms_mean": cal.in_app_cpu_s * 1000.0,
        "io_share": cal.io_share,
        "server_cpu_ms": cal.cpu_s * 1000.0,
        "app_percentiles_ms": {f"p{q:g}": v for q, v in cal.app_ms.items()},
        "paths": [
            {
                "path": p.name,
                "weight": p.weight,
                "requests": p.requests,
                "app_ms_mean": p.app_ms_mean,
                "cpu_ms_mean": p.cpu_ms_mean,
                "app_percentiles_ms": {f"p{q:g}": v for q, v in p.app_ms.items()},
                "errors": p.errors,
            }
            for p in cal.paths
        ],
        "app_errors": cal.app_errors,
        "runqueue_ms": cal.queue_s * 1000.0,
        "base_mb": cal.base_mb,
        "worker_mb": cal.worker_mb,
        "thread_mb": cal.thread_mb,
        "memory_scale": cal.scale,
        "learnt_costs": cal.costs,
    }


def generator_limit(cands: list[Candidate]) -> float | None:
    """The highest rate the generator delivered when a step found it at its limit."""
    limits = [r.generator_limit for c in cands for r in c.rounds if r.generator_limit is not None]
    return max(limits) if limits else None


def generator(args: Settings, cands: list[Candidate]) -> dict:
    """How the load was generated, and how close it came to its limit (the busiest locust process)."""
    steps = [s for c in cands for r in c.rounds for s in r.steps if s.generator_busiest is not None]
    top = max(steps, key=lambda s: s.generator_busiest or 0.0, default=None)
    return {
        "workers": args.generator.workers,
        "expect_workers": args.generator.expect,
        "busiest_share": top.generator_busiest if top else None,
        "busiest_at_rate": top.rate if top else None,
        "bound_steps": sum(1 for c in cands for r in c.rounds for s in r.steps if s.generator_bound),
    }


def document(
    args: Settings,
    cal: Calibration,
    cands: list[Candidate],
    v: Verdict,
    wall_s: float,
    loads: tuple[float | None, float | None],
) -> records.Recommendation:
    b, app = args.budget, str(args.app)
    ranked = sorted(cands, key=lambda c: (c.status.rank, -c.rate_at_slo, -c.prediction.rate))
    fields = {
        "headline": v.headline,
        "recommended": configuration(v.recommended, str(args.app), b.cpus, b.memory_mb)
        if v.recommended
        else None,
        "baseline": configuration(v.baseline, str(args.app), b.cpus, b.memory_mb),
        "margin": v.margin,
        "margin_lower_bound": v.lower_bound and not v.baseline.lower_bound,
        "within_intervals": v.within_intervals,
        "tied": [c.key for c in v.tied] if len(v.tied) > 1 else [],
        "why": v.why,
        "binding": v.binding.sentence if v.binding else "",
        "unmeasured_kinds": v.unmeasured,
        "minutes_needed": v.minutes_needed,
        "generator_limit_rps": generator_limit(cands),
        "generator": generator(args, cands),
        "shared_machine": Sharing.of(b.cpus, args.generator.expect).as_dict(),
        "app": app,
        "project": project.record(args.team, args.image_added, args.runtime),
        "workload": args.workload_text(),
        "paths": [{"path": p, "weight": w} for p, w in args.paths],
        "locustfile": str(args.locustfile) if args.locustfile else None,
        "requests": list(args.workload.as_dict()["requests"]) if args.workload else None,
        "expected_statuses": list(args.workload.expect) if args.workload else [],
        "traffic": asdict(args.traffic) if args.traffic else None,
        "max_in_flight": args.max_in_flight,
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
        "calibration": calibration(cal),
        "minutes": args.minutes,
        "wall_s": wall_s,
        "seed": args.seed,
        "load_average": {"before": loads[0], "after": loads[1]},
        "candidates": [candidate(c, args) for c in ranked],
    }
    # recommended and baseline become Configuration; the keys keep their order (Recommendation.order)
    return records.Recommendation.from_dict(fields)
