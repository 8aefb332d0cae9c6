"""Replicas for a target rate: how many copies of the recommended shape serve it.  Pure.

replicas = ceil(target / (the rate one replica was measured at, at the objectives, x
utilisation)): a replica is planned at ``utilisation`` of what it held, so a replica lost or
a burst above the target still meets the objectives.  A measured rate that is a floor (every
step passed, or the generator's limit) makes the count an upper bound: a replica may hold
more, so fewer may do.  The plan's CPU per replica (the cores measured at the rate, scaled
to the planned rate) as a share of the replica's request is the autoscaler's target.

What this module does not know: how the rate was measured, or what a deploy file looks like.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DEFAULT_UTILISATION = 0.7
SOURCE_FLAG = "the one given with --target-rps"
MAX_REPLICAS_FACTOR = 2  # the autoscaler's ceiling when --max-replicas is not given: twice the plan
MIN_CPU_TARGET, MAX_CPU_TARGET = 10, 95  # an autoscaler target outside these never or always scales


class PlanError(ValueError):
    """A plan that cannot be made; the message is one line for the user."""


@dataclass(frozen=True)
class Replica:
    """One replica as tune measured it: the shape, its rate at the objectives, the cores it used."""

    shape: str  # "gunicorn gthread -w 2 --threads 8"
    rate: float  # req/s at the objectives
    interval: tuple[float, float] | None
    lower_bound: bool  # the rate is a floor
    cpu_cores: float | None  # server cores used at that rate
    cpus: float  # the replica's CPU request (the budget)


@dataclass(frozen=True)
class Plan:
    target_rps: float
    source: str  # where the target came from: SOURCE_FLAG, "the access log's busiest minute"
    slo: str  # "p95 <= 250 ms"
    utilisation: float
    replica: Replica
    needed: int  # replicas the target needs
    max_replicas: int  # the autoscaler's ceiling (--max-replicas, else MAX_REPLICAS_FACTOR x needed)

    @property
    def replicas(self) -> int:
        """What the files run: the needed count, at most the ceiling."""
        return min(self.needed, self.max_replicas)

    @property
    def capped(self) -> bool:
        return self.needed > self.max_replicas

    @property
    def upper_bound(self) -> bool:
        return self.replica.lower_bound

    @property
    def planned_rps(self) -> float:
        """What each replica is planned to carry."""
        return self.replica.rate * self.utilisation

    @property
    def served_rps(self) -> float:
        """What the replicas the files run carry at the planned utilisation."""
        return self.replicas * self.planned_rps

    @property
    def cpu_at_plan(self) -> float | None:
        """Cores one replica uses at the planned rate (the measured cores, scaled by rate)."""
        r = self.replica
        return r.cpu_cores * self.utilisation if r.cpu_cores is not None else None

    @property
    def cpu_target_percent(self) -> int | None:
        """The autoscaler's CPU utilisation target: the plan's cores as a share of the request."""
        cpu = self.cpu_at_plan
        if cpu is None or self.replica.cpus <= 0:
            return None
        return min(max(round(100 * cpu / self.replica.cpus), MIN_CPU_TARGET), MAX_CPU_TARGET)

    def headline(self) -> str:
        r = self.replica
        each = f"{r.rate:,.0f} req/s or more" if r.lower_bound else f"{r.rate:,.0f} req/s"
        interval = f" [{r.interval[0]:,.0f}-{r.interval[1]:,.0f}]" if r.interval else ""
        count = f"at most {self.replicas}" if self.upper_bound else str(self.replicas)
        text = (
            f"To serve {self.target_rps:,.0f} req/s at {self.slo}: {count} replicas of {r.shape}, "
            f"each measured at {each}{interval}, planned at {self.utilisation:.0%}"
        )
        if self.upper_bound:
            text += " (a replica's rate is a floor, so the count is an upper bound)"
        if self.capped:
            text += (
                f"; {self.needed} are needed but --max-replicas is {self.max_replicas}: "
                f"they serve about {self.served_rps:,.0f} req/s"
            )
        return text + "."

    def as_dict(self) -> dict:
        out = asdict(self)
        out["replica"]["interval"] = list(r) if (r := self.replica.interval) else None
        for name in ("replicas", "capped", "upper_bound", "planned_rps", "served_rps", "cpu_at_plan"):
            out[name] = getattr(self, name)
        out["cpu_target_percent"] = self.cpu_target_percent
        out["headline"] = self.headline()
        return out


def needed(target_rps: float, rate: float, utilisation: float) -> int:
    """ceil(target / (rate x utilisation)), at least one."""
    if rate <= 0:
        raise PlanError("no rate met the objectives: no replica count can be planned")
    return max(math.ceil(target_rps / (rate * utilisation) - 1e-9), 1)


def plan(
    target_rps: float,
    replica: Replica,
    *,
    slo: str,
    utilisation: float = DEFAULT_UTILISATION,
    max_replicas: int | None = None,
    source: str = SOURCE_FLAG,
) -> Plan:
    if target_rps <= 0:
        raise PlanError(f"the target rate must be positive, not {target_rps:g}")
    if not 0 < utilisation <= 1:
        raise PlanError(f"utilisation must be in (0, 1], not {utilisation:g}")
    n = needed(target_rps, replica.rate, utilisation)
    ceiling = max_replicas if max_replicas is not None else MAX_REPLICAS_FACTOR * n
    if ceiling < 1:
        raise PlanError(f"--max-replicas must be at least 1, not {ceiling}")
    return Plan(target_rps, source, slo, utilisation, replica, n, ceiling)


def shape_text(server: str, worker_class: str, workers: int, threads: int | None) -> str:
    """A shape as a person says it: 'gunicorn gthread -w 2 --threads 8'."""
    text = f"{server} {worker_class} -w {workers}"
    return text + (f" --threads {threads}" if threads and threads > 1 else "")


def slo_text(slo: dict[str, float]) -> str:
    """{'p95_ms': 250.0} -> 'p95 <= 250 ms'."""
    return ", ".join(f"{k.removesuffix('_ms')} <= {v:g} ms" for k, v in slo.items())


def replica_of(recommended: dict, measurements: list[dict] | None = None) -> Replica:
    """The replica a recommendation.json ``recommended`` entry describes (``measurements``: its rounds)."""
    cores = [m["server_cpu_cores"] for m in measurements or [] if m.get("server_cpu_cores") is not None]
    interval = recommended.get("rate_at_slo_interval")
    return Replica(
        shape=shape_text(
            recommended["server"], recommended["worker_class"], recommended["workers"], recommended["threads"]
        ),
        rate=float(recommended["rate_at_slo"]),
        interval=(float(interval[0]), float(interval[1])) if interval else None,
        lower_bound=bool(recommended.get("rate_at_slo_lower_bound")),
        cpu_cores=sorted(cores)[len(cores) // 2] if cores else None,
        cpus=float(recommended["cpus"]),
    )


def target(
    target_rps: float | None, busiest_minute_rps: float | None, recording: str = ""
) -> tuple[float, str] | None:
    """The rate to plan for and where it came from: ``--target-rps``, else a recording's busiest minute."""
    if target_rps is not None:
        return target_rps, SOURCE_FLAG
    if busiest_minute_rps:
        what = "the HAR recording's" if recording == "har" else "the access log's"
        return busiest_minute_rps, f"{what} busiest minute ({busiest_minute_rps:,.1f} req/s)"
    return None


def for_record(
    result: dict,
    target_rps: float,
    *,
    utilisation: float = DEFAULT_UTILISATION,
    max_replicas: int | None = None,
    source: str = SOURCE_FLAG,
) -> Plan | None:
    """The plan for recommendation.json's recommended shape; None when nothing was recommended."""
    rec = result.get("recommended")
    if rec is None:
        return None
    rounds = next(
        (c.get("measurements") for c in result.get("candidates") or [] if c.get("key") == rec["key"]), []
    )
    return plan(
        target_rps,
        replica_of(rec, rounds),
        slo=slo_text(result["slo"]),
        utilisation=utilisation,
        max_replicas=max_replicas,
        source=source,
    )
