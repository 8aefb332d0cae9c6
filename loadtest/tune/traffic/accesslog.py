"""An access log as a workload: nginx/Apache combined and common, and gunicorn's default format.

Each format is an Apache ``LogFormat`` string parsed by ``apachelogs`` (a maintained
parser of exactly these); gunicorn's default ``access_log_format``
(``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"``) writes the combined
line, as nginx's default ``log_format combined`` does, so the three share one pattern.

Policy choices, in order:

- the format is the one named (``--log-format``), else the one that parses most of
  the first ``DETECT_LINES`` lines (combined before common on a tie);
- a ``.gz`` file (by its name or its magic bytes) is read through ``gzip``;
- a line that does not parse, or whose request line is not ``METHOD /target HTTP/x``,
  is counted under its reason and skipped;
- GET and HEAD are replayed as logged, query string kept; other methods only with
  ``replay_writes`` (with no body: a log has none);
- a request's weight is its count; the ``top`` most frequent are kept, the rest summarised;
- the statuses a request answered below 500 (a 404, a redirect) are its expected answers;
- the busiest clock minute's count / 60 is the peak rate.

What this module does not know: how the workload is sent, or what tune does with it.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import apachelogs

from loadtest.registry.workload import READS, SERVER_ERRORS, Request, Traffic, Workload
from loadtest.tune.traffic import TrafficError

COMBINED = apachelogs.COMBINED  # %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"
FORMATS = {
    "combined": COMBINED,  # nginx's and Apache's combined
    "gunicorn": COMBINED,  # gunicorn's default access_log_format writes the same fields
    "common": apachelogs.COMMON,  # %h %l %u %t "%r" %>s %b
}
DETECTED = ("combined", "common")  # the order detection tries (gunicorn's is the combined line)
DETECT_LINES = 200
DEFAULT_TOP = 50
GZIP_MAGIC = b"\x1f\x8b"
NOT_REQUEST = "request line not METHOD /target HTTP/x"


@dataclass(frozen=True)
class Entry:
    method: str
    target: str
    status: int
    minute: str | None  # YYYY-mm-ddTHH:MM in the log's own offset


def lines_of(path: Path) -> Iterator[str]:
    """The file's lines, gunzipped when it is gzip (by name or by its first bytes)."""
    try:
        with path.open("rb") as raw:
            gz = path.suffix == ".gz" or raw.read(2) == GZIP_MAGIC
    except OSError as exc:
        raise TrafficError(f"--access-log {path}: {exc.strerror or exc}") from None
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        try:
            for line in f:
                yield line.rstrip("\r\n")
        except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
            raise TrafficError(f"--access-log {path}: {exc}") from None


def parse_line(parser: apachelogs.LogParser, line: str) -> Entry | str:
    """The entry, or the reason the line was skipped."""
    if not line.strip():
        return "empty line"
    try:
        e = parser.parse(line)
    except apachelogs.InvalidEntryError:
        return "not the log format"
    parts = (e.request_line or "").split(" ")
    if len(parts) != 3 or not parts[1].startswith("/") or not parts[2].startswith("HTTP/"):
        return NOT_REQUEST
    status = e.final_status if e.final_status is not None else e.status
    when = e.request_time
    return Entry(parts[0].upper(), parts[1], int(status), when.strftime("%Y-%m-%dT%H:%M") if when else None)


def detect(lines: Iterable[str]) -> str | None:
    """The format that parses most of the sample (None when none parses any line)."""
    sample = [ln for ln in lines if ln.strip()][:DETECT_LINES]
    counts = {
        name: sum(isinstance(parse_line(apachelogs.LogParser(FORMATS[name]), ln), Entry) for ln in sample)
        for name in DETECTED
    }
    best = max(DETECTED, key=lambda n: counts[n])  # max keeps the first of a tie: combined
    return best if counts[best] else None


def read(path: Path, log_format: str | None = None, top: int = DEFAULT_TOP, replay_writes: bool = False):
    """(Workload, Traffic) from the log; TrafficError when nothing in it parses."""
    path = Path(path)
    fmt = log_format or detect(_head(path)) or "combined"
    parser = apachelogs.LogParser(FORMATS[fmt])
    counts: Counter[tuple[str, str]] = Counter()
    statuses: dict[tuple[str, str], Counter[int]] = {}
    minutes: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    writes = read_lines = parsed = 0
    first_bad = ""
    for line in lines_of(path):
        read_lines += 1
        entry = parse_line(parser, line)
        if isinstance(entry, str):
            skipped[entry] += 1
            first_bad = first_bad or line
            continue
        parsed += 1
        if entry.minute:
            minutes[entry.minute] += 1
        if entry.method not in READS and not replay_writes:
            writes += 1
            continue
        key = (entry.method, entry.target)
        counts[key] += 1
        statuses.setdefault(key, Counter())[entry.status] += 1
    if not parsed:
        shown = f"; first line {first_bad[:60]!r}" if first_bad else ""
        why = f"no line parses as the {fmt} format ({read_lines} read{shown})"
        raise TrafficError(f"--access-log {path}: {why}")
    if not counts:
        why = "no GET or HEAD request in it (--replay-writes replays the rest)"
        raise TrafficError(f"--access-log {path}: {why}")
    kept = counts.most_common(top)
    total = sum(counts.values())
    requests = tuple(
        Request(
            target=t,
            weight=float(n),
            method=m,
            expect=tuple(sorted(s for s in statuses[(m, t)] if s < SERVER_ERRORS and s >= 300)),
        )
        for (m, t), n in kept
    )
    covered = sum(n for _, n in kept)
    traffic = Traffic(
        source=str(path),
        format=fmt,
        lines=read_lines,
        parsed=parsed,
        skipped=dict(skipped),
        distinct=len(counts),
        kept=len(kept),
        kept_share=covered / total,
        writes_left_out=writes,
        busiest_minute_rps=max(minutes.values()) / 60.0 if minutes else None,
        rest=rest_text(counts, len(kept), total - covered),
    )
    return Workload(requests), traffic


def rest_text(counts: Counter, kept: int, left: int) -> str:
    """The requests not kept: how many kinds, how many requests, the first few of them."""
    others = counts.most_common()[kept:]
    if not others:
        return ""
    shown = ", ".join(t if m == "GET" else f"{m} {t}" for (m, t), _ in others[:3])
    return f"{len(others)} more distinct requests ({left} requests), e.g. {shown}"


def _head(path: Path) -> list[str]:
    out = []
    for line in lines_of(path):
        out.append(line)
        if len(out) >= DETECT_LINES:
            break
    return out
