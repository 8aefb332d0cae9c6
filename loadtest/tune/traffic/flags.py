"""The flags of the team's traffic and limits, and the workload they make (one line, exit 2 when bad).

``--access-log``/``--har`` (or ``--path``) give the requests, ``--expect-status`` the answers that
are no errors, ``--max-in-flight`` the most requests the deployment may hold at once.  Added to
tune's parser by ``add_arguments``; ``resolve`` turns the parsed flags into a ``Workload``, the
recording's ``Traffic`` summary and the limit.  What this module does not know: the search.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from loadtest.registry.workload import SERVER_ERRORS, Traffic, Workload, from_paths
from loadtest.run.plan import UsageError
from loadtest.tune.traffic import TrafficError, accesslog, har

MAX_IN_FLIGHT = 100_000
MAX_TOP = 10_000


def statuses(text: str) -> list[int]:
    """``404`` or ``404,410`` -> [404, 410]: answers from 100 to 499 (a 5xx is always an error)."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or not 100 <= int(item) < SERVER_ERRORS:
            raise argparse.ArgumentTypeError(
                f"bad status {item!r}: expected 100 to 499 (5xx answers always count as errors)"
            )
        out.append(int(item))
    return out


def positive(flag: str, most: int):
    def parse(text: str) -> int:
        if not text.isdigit() or not 1 <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number from 1 to {most}, got {text!r}")
        return int(text)

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--access-log",
        type=Path,
        default=None,
        help="the workload from an access log (nginx/Apache combined or common, gunicorn's; .gz read)",
    )
    p.add_argument(
        "--log-format",
        choices=sorted(accesslog.FORMATS),
        default=None,
        help="the access log's format (default: detected)",
    )
    p.add_argument(
        "--top-paths",
        type=positive("--top-paths", MAX_TOP),
        default=accesslog.DEFAULT_TOP,
        help=f"keep the N most frequent requests of the log (default {accesslog.DEFAULT_TOP})",
    )
    p.add_argument(
        "--replay-writes",
        action="store_true",
        help="replay the log's POST/PUT/PATCH/DELETE too (default: GET and HEAD only)",
    )
    p.add_argument(
        "--har",
        type=Path,
        default=None,
        help="the workload from a HAR recording (a browser's or a proxy's): methods, headers, bodies",
    )
    p.add_argument(
        "--keep-auth",
        action="store_true",
        help="keep the HAR's Cookie and Authorization headers (default: dropped)",
    )
    p.add_argument(
        "--expect-status",
        type=statuses,
        action="append",
        default=[],
        help="an answer that is no error, repeatable or comma-separated: --expect-status 404,410",
    )
    p.add_argument(
        "--max-in-flight",
        type=positive("--max-in-flight", MAX_IN_FLIGHT),
        default=None,
        help="the most requests the deployment may hold at once (e.g. its database connections): "
        "shapes above it are capped where the server has an option for it, else pruned",
    )


@dataclass(frozen=True)
class Given:
    """What ``resolve`` returns: the workload (None: a locustfile's), the recording's summary, the limit."""

    workload: Workload | None
    traffic: Traffic | None
    max_in_flight: int | None


def check_pairs(ns: argparse.Namespace) -> None:
    ways = (("--path", ns.path), ("--locustfile", ns.locustfile), ("--access-log", ns.access_log),
            ("--har", ns.har))  # fmt: skip
    given = [flag for flag, value in ways if value]
    if len(given) > 1:
        raise UsageError(f"give the workload one way: {' or '.join(given)}, not both")
    needs = (("--log-format", ns.log_format is not None, "--access-log", ns.access_log),
             ("--replay-writes", ns.replay_writes, "--access-log", ns.access_log),
             ("--top-paths", ns.top_paths != accesslog.DEFAULT_TOP, "--access-log", ns.access_log),
             ("--keep-auth", ns.keep_auth, "--har", ns.har))  # fmt: skip
    for flag, used, needed, present in needs:
        if used and not present:
            raise UsageError(f"{flag} is for {needed}")
    if ns.expect_status and ns.locustfile:
        raise UsageError("--expect-status is for --path, --access-log and --har (a locustfile's tasks judge "
                         "their own answers with catch_response)")  # fmt: skip


def resolve(ns: argparse.Namespace, paths: list[tuple[str, float]]) -> Given:
    """The workload of the parsed flags; ``paths`` are the --path pairs (or the default path)."""
    check_pairs(ns)
    expect = tuple(sorted({s for group in ns.expect_status for s in group}))
    traffic = None
    try:
        if ns.access_log is not None:
            work, traffic = accesslog.read(ns.access_log, ns.log_format, ns.top_paths, ns.replay_writes)
        elif ns.har is not None:
            work, traffic = har.read(ns.har, ns.keep_auth)
        elif ns.locustfile is not None:
            return Given(None, None, ns.max_in_flight)
        else:
            work = from_paths(paths)
    except TrafficError as exc:
        raise UsageError(str(exc)) from None
    return Given(Workload(work.requests, expect), traffic, ns.max_in_flight)
