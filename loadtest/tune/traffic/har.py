"""A HAR recording (a browser's or a proxy's) as a workload: methods, headers and bodies as recorded.

Policy choices:

- only requests to the origin (scheme, host, port) of the recording's first request are kept:
  a page's fonts, analytics and CDN requests are not the app's;
- ``Cookie`` and ``Authorization`` are dropped unless ``keep_auth`` (a recording carries a
  session that must not end up in a results directory); so are the headers the client
  writes itself (``Host``, ``Content-Length``, ``Connection``, HTTP/2 pseudo-headers);
- every method is replayed (a HAR is a recording made on purpose, unlike an access log);
- identical requests (method, target, headers, body) are one request weighted by their count;
- a request's recorded statuses from 300 to 499 (a redirect, a 404) are its expected answers;
  an entry with no answer (status 0: blocked or cancelled) is skipped;
- the busiest minute is counted from the entries' ``startedDateTime`` (the first 16 characters
  of the ISO time: its clock minute).

Read with the stdlib's json. What this module does not know: how the workload is sent.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from loadtest.registry.workload import SERVER_ERRORS, Request, Traffic, Workload
from loadtest.tune.traffic import TrafficError

AUTH_HEADERS = frozenset({"cookie", "authorization"})
CLIENT_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding"})


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def headers_of(request: dict, keep_auth: bool) -> tuple[tuple[str, str], ...]:
    dropped = CLIENT_HEADERS | (frozenset() if keep_auth else AUTH_HEADERS)
    return tuple(
        (str(h["name"]), str(h["value"]))
        for h in request.get("headers", [])
        if not str(h.get("name", "")).startswith(":") and str(h.get("name", "")).lower() not in dropped
    )


def entries_of(path: Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = data["log"]["entries"]
    except OSError as exc:
        raise TrafficError(f"--har {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError):
        raise TrafficError(f"--har {path}: not a HAR file (expected JSON with log.entries)") from None
    if not isinstance(entries, list) or not entries:
        raise TrafficError(f"--har {path}: no entries recorded")
    return entries


def read(path: Path, keep_auth: bool = False) -> tuple[Workload, Traffic]:
    entries = entries_of(path)
    home = origin(str(entries[0].get("request", {}).get("url", "")))
    counts: Counter[tuple] = Counter()
    statuses: dict[tuple, Counter[int]] = {}
    skipped: Counter[str] = Counter()
    minutes: Counter[str] = Counter()
    for entry in entries:
        request, status = entry.get("request") or {}, int((entry.get("response") or {}).get("status") or 0)
        url = str(request.get("url", ""))
        if origin(url) != home:
            skipped[f"another origin than {home[0]}://{home[1]}"] += 1
            continue
        if not status:
            skipped["no answer recorded"] += 1
            continue
        started = str(entry.get("startedDateTime") or "")
        if len(started) >= 16:
            minutes[started[:16]] += 1
        body = str((request.get("postData") or {}).get("text") or "")
        method = str(request.get("method", "GET")).upper()
        key = (method, target_of(url), headers_of(request, keep_auth), body)
        counts[key] += 1
        statuses.setdefault(key, Counter())[status] += 1
    if not counts:
        raise TrafficError(f"--har {path}: no answered request to {home[0]}://{home[1]}")
    requests = tuple(
        Request(
            target=t,
            weight=float(n),
            method=m,
            headers=h,
            body=b,
            expect=tuple(sorted(s for s in statuses[(m, t, h, b)] if 300 <= s < SERVER_ERRORS)),
        )
        for (m, t, h, b), n in counts.most_common()
    )
    parsed = sum(counts.values())
    traffic = Traffic(
        source=str(path),
        format="har",
        lines=len(entries),
        parsed=parsed,
        skipped=dict(skipped),
        distinct=len(counts),
        kept=len(counts),
        kept_share=1.0,
        busiest_minute_rps=max(minutes.values()) / 60.0 if minutes else None,
    )
    return Workload(requests), traffic
