"""The workload as requests: method, target, headers, body, weight, and the answers it expects.

Written by ``make tune`` (from ``--path``, ``--access-log`` or ``--har``) as one JSON
file that the open-loop generator (``generator/arrivals.py --tune-workload``)
reads: the seam between the runner and locust.  Stdlib only: both sides import it.

An answer is *expected* when its status is one the request answered in the
recording (a 404, a redirect) or one given by hand (``--expect-status``); a 5xx
never is.  Only answers outside the expected ones count against the error budget.
What this module does not know: where the requests came from or how they are sent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = 1
READS = ("GET", "HEAD")  # replayed as recorded; any other method only when asked (--replay-writes)
SERVER_ERRORS = 500  # an answer at or above this is never expected


@dataclass(frozen=True)
class Request:
    """One kind of request of the workload and its share of the arrivals."""

    target: str  # path and query string, as sent
    weight: float = 1.0
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    expect: tuple[int, ...] = ()  # statuses that are this request's normal answers (besides 1xx-3xx)

    @property
    def name(self) -> str:
        """The request's name in the records: the target alone for a GET, else ``METHOD target``."""
        return self.target if self.method == "GET" else f"{self.method} {self.target}"


@dataclass(frozen=True)
class Traffic:
    """What a recording (access log, HAR) held and how much of it the workload keeps."""

    source: str  # the file
    format: str  # combined, common, gunicorn, har
    lines: int = 0  # lines (or HAR entries) read
    parsed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    distinct: int = 0  # distinct requests (method + target) among the replayable ones
    kept: int = 0  # the top ones kept in the workload
    kept_share: float = 0.0  # share of the replayable requests the kept ones cover
    writes_left_out: int = 0  # non-GET/HEAD requests not replayed (no --replay-writes)
    busiest_minute_rps: float | None = None  # the busiest clock minute's requests / 60
    rest: str = ""  # the requests not kept, summarised

    def lines_text(self) -> list[str]:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items(), key=lambda x: -x[1]))
        rps = f"{self.busiest_minute_rps:.1f} req/s" if self.busiest_minute_rps is not None else "unknown"
        out = [
            f"{self.source} ({self.format}): {self.lines} read, {self.parsed} parsed, "
            f"{sum(self.skipped.values())} skipped" + (f" ({skipped})" if skipped else ""),
            f"{self.distinct} distinct requests; the top {self.kept} kept cover {self.kept_share:.1%} of "
            f"them; busiest minute {rps}",
        ]
        if self.writes_left_out:
            out.append(f"{self.writes_left_out} writes (not GET/HEAD) left out: --replay-writes replays them")
        if self.rest:
            out.append(f"not kept: {self.rest}")
        return out


@dataclass(frozen=True)
class Workload:
    requests: tuple[Request, ...]
    expect: tuple[int, ...] = ()  # statuses expected of every request (--expect-status)

    def expected(self, request: Request) -> frozenset[int]:
        return frozenset(s for s in (*request.expect, *self.expect) if s < SERVER_ERRORS)

    def expected_by_name(self) -> dict[str, frozenset[int]]:
        """Per request name, the union of its requests' expected answers (a HAR may vary the headers)."""
        out: dict[str, frozenset[int]] = {}
        for r in self.requests:
            out[r.name] = out.get(r.name, frozenset()) | self.expected(r)
        return out

    def weights(self) -> list[tuple[str, float]]:
        """Per request name, the sum of its requests' weights."""
        out: dict[str, float] = {}
        for r in self.requests:
            out[r.name] = out.get(r.name, 0.0) + r.weight
        return list(out.items())

    def text(self) -> str:
        shown = ", ".join(f"{r.name} (weight {r.weight:g})" for r in self.requests[:5])
        more = f" and {len(self.requests) - 5} more" if len(self.requests) > 5 else ""
        return shown + more

    def as_dict(self) -> dict:
        return {"format": FORMAT, **asdict(self)}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1))
        return path


def from_dict(data: dict) -> Workload:
    requests = tuple(
        Request(
            target=r["target"],
            weight=float(r.get("weight", 1.0)),
            method=r.get("method", "GET"),
            headers=tuple((str(k), str(v)) for k, v in r.get("headers", ())),
            body=r.get("body", ""),
            expect=tuple(int(s) for s in r.get("expect", ())),
        )
        for r in data["requests"]
    )
    return Workload(requests, tuple(int(s) for s in data.get("expect", ())))


def read(path: Path) -> Workload:
    return from_dict(json.loads(Path(path).read_text()))


def from_paths(paths: list[tuple[str, float]], expect: tuple[int, ...] = ()) -> Workload:
    """``--path /a:3 --path /b:1``: GETs with their weights."""
    return Workload(tuple(Request(p, w) for p, w in paths), expect)
