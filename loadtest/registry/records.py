"""A run directory's records in one place: summary.json, slow.json, bench.json, recommendation.json, env.json.

Every process reads runs -- the runner writes them, the renderer and ``diff`` read them, ``tune
--against`` reads an earlier one -- so this sits beside the registry with its rule: standard
library only, importable anywhere. It knows the files' shape, not what a figure means (that is
``measure/``) nor how one is shown (``reporting/``).

Each file carries ``"format": FORMAT_VERSION``. Files without it are format 1, written up to
2026-12-06 (before the record types; the 2026-12-01 runs among them, made before loadtest/ moved
into subpackages, have the same files): they load as they are. Rows written before rounds existed
(2026-11-23: no ``per_round``, ``rounds`` or intervals, identity records at
``locust/<scenario>/<target>.identity.jsonl``) load as one round with no interval. A file from a
newer format is refused in one line. Keys a record does not name are kept in ``extra`` and written
back, so a writer can add a field before every reader knows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

FORMAT_VERSION = 2
FORMAT_KEY = "format"
CI_SUFFIX = "_ci95"  # a figure's interval is stored beside it as <metric>_ci95: [low, high]
SUMMARY, BENCH, RECOMMENDATION, ENV, SLOW = (
    "summary.json",
    "bench.json",
    "recommendation.json",
    "env.json",
    "slow.json",
)


class RunError(Exception):
    """A directory or file that is not a readable run record; the message is one line for the user."""


def number(value: Any) -> float | None:
    """A recorded figure as a float; None when missing or not a number (a bool is not a number)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def pair(value: Any) -> tuple[float, float] | None:
    """A recorded [low, high] interval, or None when absent or malformed."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(number(v) is not None for v in value):
        return float(value[0]), float(value[1])
    return None


def rounds_of(rounds: Any) -> int:
    """Rounds behind a row's figures; a row written before rounds existed (no ``rounds``) is one round."""
    return int(rounds or 1)


def interval_of(recorded: Any, rounds: int, error: Any = "") -> tuple[float, float] | None:
    """A figure's interval; None for one round (a point is no interval), none recorded, or a failed row."""
    return None if rounds < 2 or error else pair(recorded)


class Record:
    """A dataclass read from a JSON object: named fields typed, every other key kept in ``extra``."""

    extra: dict[str, Any]
    # the keys as_dict puts first, in this order (the file's historical one); then other fields, then extra
    order: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict):
            raise RunError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)} - {"extra"}  # type: ignore[arg-type]
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**known, extra=extra)  # type: ignore[call-arg]

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}  # type: ignore[arg-type]
        merged = {**out, **self.extra}
        return {**{k: merged[k] for k in self.order if k in merged}, **merged}


# --------------------------------------------------------------------------- comparison rows


@dataclass
class ComparisonRow(Record):
    """One (scenario, target, users) of a comparison. Figures are read through :meth:`value`/:meth:`interval`.

    The medians over rounds (``measure/stats.METRICS``: ``rps``, ``p95_ms``, ...) and their
    ``<metric>_ci95`` stay in ``extra``, named by the measure package. ``per_round`` stays a list of
    per-round dicts, for the same reason (``measure/rounds.py`` writes them, ``measure/verdicts.py``
    reads them). ``None`` means "not recorded": a failed row has no identity facts, a row written
    before rounds has no machine verdict, no interpreter and no ``app_ms_p50``.
    """

    scenario: str
    target: str
    users: int | None = None
    error: str = ""
    rounds: int | None = None
    per_round: list[dict[str, Any]] = field(default_factory=list)
    unstable: bool = False
    unstable_metrics: list[str] = field(default_factory=list)
    unstable_reason: str = ""
    identity_file: str = ""
    cpu_count: int | None = None
    # what was run
    kind: str = ""  # "local" | "external"
    url: str = ""
    command: str = ""
    explanation: str = ""
    capacity: int | None = None  # requests the model can hold at once; None: no fixed pool
    notes: list[str] = field(default_factory=list)
    # requests, over the good rounds
    requests: int | None = None
    failures: int | None = None
    errors: dict[str, int] = field(default_factory=dict)  # error kind (error_kinds.ERROR_KINDS) -> count
    latency_source: str = ""
    # identity facts, the largest any round saw; None for a row with no good round
    with_identity: int | None = None  # responses that carried the identity headers
    pids: int | None = None
    threads: int | None = None  # lanes: (pid, thread) pairs seen
    max_threads_per_pid: int | None = None
    lane_kind: str = ""  # "thread" | "greenlet", when the server said
    interpreter: dict[str, Any] = field(default_factory=dict)  # the server's (/_lab/usage): version, GIL on?
    app_ms_p50: float | None = None
    pool_full_share: float | None = None  # share of the run one process was full while another was not
    # the verdicts; None where a row was written before the verdict existed
    generator_saturated: bool | None = None
    generator_headroom: float | None = None
    generator_processes: int | None = None
    machine_cpu: float | None = None
    machine_bound: bool | None = None
    cpu_limit: float | None = None
    server_mem_kind: str = ""
    io_ceiling: float | None = None
    io_efficiency: float | None = None
    little: dict[str, float | None] = field(default_factory=dict)  # in_flight_measured, in_flight_little
    answer: str = ""
    stderr_tail: str = (
        ""  # why a failed target failed (older runs: ``stderr_log``, ``locust_log_tail`` in extra)
    )
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return self.scenario, self.target, int(self.users or 0)

    @property
    def round_count(self) -> int:
        return rounds_of(self.rounds)

    @property
    def failed(self) -> str:
        return self.error or ""

    def value(self, metric: str) -> float | None:
        """A figure as a float (a median in ``extra``, or a named one); None when not recorded."""
        named = metric != "extra" and metric in {f.name for f in fields(self)}
        return number(getattr(self, metric) if named else self.extra.get(metric))

    def interval(self, metric: str) -> tuple[float, float] | None:
        """The metric's interval; None for one round (a point is no interval), none recorded or an error."""
        return interval_of(self.extra.get(metric + CI_SUFFIX), self.round_count, self.error)


@dataclass
class Summary(Record):
    """summary.json: the comparison's parameters and rows."""

    rows: list[ComparisonRow]
    parameters: dict[str, Any] | None = None
    format: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        raw = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise RunError("no rows")
        summary = super().from_dict({**data, "rows": []})
        summary.rows = [ComparisonRow.from_dict(r) for r in raw]
        return summary

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "format": FORMAT_VERSION, "rows": [r.as_dict() for r in self.rows]}


# --------------------------------------------------------------------------- slow clients


@dataclass
class SlowRow(Record):
    """One target of a slow-clients comparison (slow.json, a list of these with no version key).

    The normal users' figures are None when no request of theirs was recorded; a failed target has
    ``error`` and none of them.
    """

    target: str
    normal_users: int | None = None
    slow_clients: int | None = None
    error: str = ""
    requests: int | None = None
    success_rate: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    first_success_s: float | None = None  # None: no normal request was ever answered
    held: str = ""  # what the slow clients held, in words
    before: dict[str, int] | None = None  # processes, threads, connections before the load
    peak: dict[str, int] | None = None  # ... and the most of each during it
    identity_file: str = ""
    answer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- bench


@dataclass
class BenchRound(Record):
    """One wrk measurement of one target; ``rps`` None when the round failed (``errors`` says why)."""

    rps: float | None
    cpu_us: float | None = None  # server CPU (every process of its tree) per request, microseconds
    requests: int = 0
    errors: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


BENCH_METRICS = ("rps", "cpu_us")  # the figures of a bench row, in BenchRound's names


@dataclass
class BenchRow(Record):
    """A bench target over its rounds: the rounds, their medians and intervals."""

    target: str
    explanation: str = ""
    command_args: list[str] = field(default_factory=list)
    per_round: list[BenchRound] = field(default_factory=list)
    failed: str = ""
    rps: float | None = None
    cpu_us: float | None = None
    rps_ci95: list[float] | None = None
    cpu_us_ci95: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        row = super().from_dict(data)
        row.per_round = [r if isinstance(r, BenchRound) else BenchRound.from_dict(r) for r in row.per_round]
        return row

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "per_round": [r.as_dict() for r in self.per_round]}

    @property
    def key(self) -> str:
        return self.target

    @property
    def round_count(self) -> int:
        """Rounds behind the medians: the ones that measured something."""
        return sum(r.rps is not None for r in self.per_round)

    def value(self, metric: str) -> float | None:
        return number(getattr(self, metric, None))

    def interval(self, metric: str) -> tuple[float, float] | None:
        return interval_of(getattr(self, metric + CI_SUFFIX, None), self.round_count)


@dataclass
class BenchParameters(Record):
    duration: float
    connections: int
    threads: int
    rounds: int
    warmup: float = 0
    app: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchRun(Record):
    """bench.json: every round of every target, the medians, the goals."""

    parameters: BenchParameters
    rows: list[BenchRow]
    load_before: float = 0.0
    load_after: float = 0.0
    goals: list[dict[str, Any]] = field(default_factory=list)
    native_cpu_ratio: dict[str, float] = field(default_factory=dict)
    kind: str = "bench"
    format: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise RunError("has no rows")
        run = super().from_dict(data)
        run.parameters = BenchParameters.from_dict(run.parameters)  # type: ignore[arg-type]
        run.rows = [BenchRow.from_dict(r) for r in run.rows]  # type: ignore[arg-type]
        return run

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "format": FORMAT_VERSION,
            "parameters": self.parameters.as_dict(),
            "rows": [r.as_dict() for r in self.rows],
        }


# --------------------------------------------------------------------------- tune


class Status(StrEnum):
    """A tune candidate's status, as recommendation.json writes it (``candidates[].status``).

    Declared in the order the record ranks its candidates: measured first, pending last.
    """

    MEASURED = "measured"
    FAILED = "failed"  # measured, and every round failed (no rate)
    NOT_REACHED = "not reached"  # the time budget ended first
    PRUNED = "pruned"  # the prediction ruled it out
    PENDING = "pending"  # still to be measured (a finished search leaves none)

    @property
    def tried(self) -> bool:
        """A measurement was made (it may have failed)."""
        return self in (Status.MEASURED, Status.FAILED)

    @property
    def rank(self) -> int:
        """The record's order of candidates: measured, failed, not reached, pruned, pending."""
        return list(Status).index(self)


@dataclass
class Configuration(Record):
    """A shape as recommendation.json states it (``recommended``/``baseline``): what a deployer needs."""

    server: str
    worker_class: str
    workers: int
    threads: int | None
    command: str
    rate_at_slo: float
    p95_ms: float | None
    memory_mb: float | None
    cpus: float  # whole cores, or a fractional CPU quota (--runtime docker --cpus 1.5)
    key: str = ""
    target: str = ""
    rate_at_slo_interval: list[float] | None = None
    rounds: int = 0
    p99_ms: float | None = None
    fits_memory: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    order: ClassVar[tuple[str, ...]] = (
        "key", "target", "server", "worker_class", "kind", "workers", "threads", "cap", "slots", "command",
        "rate_at_slo", "rate_at_slo_lower_bound", "at_generator_limit", "rate_at_slo_interval", "rounds",
        "p95_ms", "p99_ms", "memory_mb", "fits_memory", "cpus",
    )  # fmt: skip


@dataclass
class Fleet(Record):
    """recommendation.json's ``fleet``: replicas of the recommended shape for ``--target-rps``.

    ``replica`` is the rate one replica was measured at (``rate``, ``interval``, ``lower_bound``) and
    the cores it used; ``upper_bound``: that rate is a floor, so ``replicas`` is at most what is needed.
    """

    target_rps: float
    replicas: int
    needed: int
    max_replicas: int
    utilisation: float
    headline: str
    source: str = ""  # where the target rate came from
    slo: str = ""
    capped: bool = False
    upper_bound: bool = False
    planned_rps: float | None = None
    served_rps: float | None = None
    cpu_at_plan: float | None = None
    cpu_target_percent: int | None = None
    replica: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recommendation(Record):
    """recommendation.json, make tune's result. ``calibration``, ``budget`` and each candidate stay
    mappings: tune adds to them, and a reader takes what it knows."""

    headline: list[str]
    baseline: Configuration
    recommended: Configuration | None = None
    margin: float | None = None
    within_intervals: bool = False
    why: str = ""
    binding: str = ""
    app: str = ""
    slo: dict[str, float] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    fleet: Fleet | None = None  # written from 2026-12-08 when --target-rps (or an access log) gives a rate
    format: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    order: ClassVar[tuple[str, ...]] = (
        "headline", "recommended", "baseline", "margin", "margin_lower_bound", "within_intervals", "tied",
        "why", "binding", "unmeasured_kinds", "minutes_needed", "generator_limit_rps", "generator",
        "shared_machine", "app", "project", "workload", "paths", "locustfile", "requests",
        "expected_statuses", "traffic", "max_in_flight", "slo", "max_error_rate", "budget", "calibration",
        "minutes", "wall_s", "seed", "load_average", "candidates",
    )  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        rec = super().from_dict(data)
        rec.baseline = Configuration.from_dict(rec.baseline)  # type: ignore[arg-type]
        if rec.recommended is not None:
            rec.recommended = Configuration.from_dict(rec.recommended)  # type: ignore[arg-type]
        if rec.fleet is not None:
            rec.fleet = Fleet.from_dict(rec.fleet)  # type: ignore[arg-type]
        return rec

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out["format"] = FORMAT_VERSION
        out["baseline"] = self.baseline.as_dict()
        out["recommended"] = self.recommended.as_dict() if self.recommended else None
        if self.fleet is None:
            del out["fleet"]  # no plan asked for: the file says nothing of one, as before fleets
        else:
            out["fleet"] = self.fleet.as_dict()
        return out


# --------------------------------------------------------------------------- env.json


@dataclass
class Environment(Record):
    """env.json: when, where and with what a run ran (compare's, bench's and tune's share these fields)."""

    started: str = ""
    finished: str = ""
    python: str = ""
    cpu_model: str = ""
    cpu_count: int | None = None
    cgroup_cpu_limit: float | None = None
    load_before: float | None = None
    load_after: float | None = None
    git_commit: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    seed: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    format: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "format": FORMAT_VERSION}


# --------------------------------------------------------------------------- files


def read_json(path: Path) -> Any:
    """A record file's JSON, refusing a format newer than this code's in one line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from exc
    version = data.get(FORMAT_KEY, 1) if isinstance(data, dict) else 1
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunError(f"{path}: format {version!r} is newer than this wsgi-lab reads ({FORMAT_VERSION})")
    return data


def write_json(path: Path, data: Any, indent: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, default=str) + "\n", encoding="utf-8")


def _load(path: Path, cls: type[Record]) -> Any:
    data = read_json(path)
    try:
        return cls.from_dict(data)
    except RunError as exc:
        raise RunError(f"{path}: {exc}") from None
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise RunError(f"{path}: not a {cls.__name__} record ({exc})") from None


def load_summary(run: Path) -> Summary:
    return _load(run / SUMMARY, Summary)


def load_bench(run: Path) -> BenchRun:
    return _load(run / BENCH, BenchRun)


def load_recommendation(run: Path) -> Recommendation:
    return _load(run / RECOMMENDATION, Recommendation)


def load_env(run: Path) -> Environment:
    """env.json, or an empty Environment when the run has none (older runs, a bare summary)."""
    if not (run / ENV).is_file():
        return Environment()
    return _load(run / ENV, Environment)


def load_slow(run: Path) -> list[SlowRow]:
    data = read_json(run / SLOW)
    if not isinstance(data, list):
        raise RunError(f"{run / SLOW}: not a list of rows")
    try:
        return [SlowRow.from_dict(r) for r in data]
    except RunError as exc:
        raise RunError(f"{run / SLOW}: {exc}") from None
    except TypeError as exc:
        raise RunError(f"{run / SLOW}: not a SlowRow record ({exc})") from None


def write_slow(run: Path, rows: list[SlowRow]) -> None:
    write_json(run / SLOW, [r.as_dict() for r in rows])


def write_summary(run: Path, summary: Summary) -> None:
    write_json(run / SUMMARY, summary.as_dict())


def write_bench(run: Path, bench: BenchRun) -> None:
    write_json(run / BENCH, bench.as_dict())


def write_recommendation(run: Path, rec: Recommendation | dict[str, Any]) -> None:
    data = rec.as_dict() if isinstance(rec, Recommendation) else {**rec, FORMAT_KEY: FORMAT_VERSION}
    write_json(run / RECOMMENDATION, data, indent=1)


def write_env(run: Path, env: Environment | dict[str, Any], indent: int = 2) -> None:
    data = env.as_dict() if isinstance(env, Environment) else {**env, FORMAT_KEY: FORMAT_VERSION}
    write_json(run / ENV, data, indent=indent)


def identity_path(run: Path, row: ComparisonRow) -> Path:
    """The identity records of the row's last round (of its only run, for rows written before rounds)."""
    if row.identity_file:
        return run / row.identity_file
    for record in reversed(row.per_round):
        if record.get("identity_file"):
            return run / str(record["identity_file"])
    return run / "locust" / row.scenario / f"{row.target}.identity.jsonl"


def kind_of(run: Path) -> str:
    """'bench', 'comparison', 'slow' (a slow-clients comparison) or 'tune'; RunError when none of these."""
    if not run.is_dir():
        raise RunError(f"{run}: no such directory")
    for name, kind in ((BENCH, "bench"), (SUMMARY, "comparison"), (SLOW, "slow"), (RECOMMENDATION, "tune")):
        if (run / name).is_file():
            return kind
    raise RunError(f"{run}: no {SUMMARY} or {BENCH} (not a directory written by loadtest.compare or bench)")
