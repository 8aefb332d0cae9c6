"""Access logs and HAR files as workloads: each format, garbage lines, gzip, detection, bad files."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.registry import targets, workload
from loadtest.tune import calibrate
from loadtest.tune.calibrate import app_errors
from loadtest.tune.candidates import Shape, family
from loadtest.tune.ladder import requests_only
from loadtest.tune.settings import Slo
from loadtest.tune.traffic import TrafficError, accesslog, har
from loadtest.tune.trial import Session, serve_ladder
from tests.support import ROOT, assert_one_line_error, run_module

PATHS = [("/", 200, 50), ("/items?page=2", 200, 25), ("/missing", 404, 15), ("/old", 301, 9),
         ("/boom", 500, 1)]  # fmt: skip
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
GARBAGE = [
    "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03",  # TLS on the plain port, as nginx logs it
    "203.0.113.9 - - [08/Dec/2026:03:10:0",  # a line cut short by log rotation
    "",
]


def line(fmt: str, i: int, target: str, status: int, method: str = "GET") -> str:
    """One realistic line of ``fmt`` (second ``i`` of 03:00 UTC)."""
    ip = f"10.0.{i % 7}.{i % 200 + 1}"
    when = f"08/Dec/2026:03:{i // 60 % 60:02d}:{i % 60:02d} +0000"
    size = "0" if status in (301, 304) and fmt == "nginx" else ("-" if status == 301 else str(200 + i % 900))
    head = f'{ip} - - [{when}] "{method} {target} HTTP/1.1" {status} {size}'
    if fmt == "common":
        return head
    referer = "-" if fmt == "gunicorn" else "https://example.test/"
    return f'{head} "{referer}" "{AGENT}"'


def write_log(tmp_path: Path, fmt: str, n: int = 1000, garbage: float = 0.01, name: str = "a.log") -> Path:
    rng = random.Random(7)
    lines = []
    for i in range(n):
        if rng.random() < garbage:
            lines.append(rng.choice(GARBAGE))
            continue
        target, status, _ = rng.choices(PATHS, [w for *_, w in PATHS])[0]
        lines.append(line(fmt, i, target, status, "POST" if i % 97 == 0 else "GET"))
    path = tmp_path / name
    text = "\n".join(lines) + "\n"
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("fmt", "detected"), [("nginx", "combined"), ("gunicorn", "combined"), ("common", "common")]
)
def test_each_format_detected_and_counted(tmp_path, fmt, detected):
    path = write_log(tmp_path, fmt)
    work, traffic = accesslog.read(path)
    assert traffic.format == detected
    assert traffic.lines == 1000
    skipped = sum(traffic.skipped.values())
    assert traffic.parsed + skipped == 1000
    assert 3 <= skipped <= 25  # about 1 % garbage
    names = {r.name: r for r in work.requests}
    assert set(names) == {"/", "/items?page=2", "/missing", "/old", "/boom"}  # the query string kept
    assert names["/"].weight > names["/missing"].weight > names["/boom"].weight
    assert names["/missing"].expect == (404,) and names["/old"].expect == (301,)
    assert names["/boom"].expect == ()  # a 5xx is never an expected answer
    assert traffic.writes_left_out > 0 and not any(r.method == "POST" for r in work.requests)
    assert traffic.kept_share == 1.0 and traffic.distinct == 5
    assert traffic.busiest_minute_rps == pytest.approx(1.0, abs=0.1)  # one line a second


def test_named_format_and_writes_replayed(tmp_path):
    path = write_log(tmp_path, "gunicorn", garbage=0.0)
    work, traffic = accesslog.read(path, log_format="gunicorn", replay_writes=True)
    assert traffic.format == "gunicorn" and traffic.writes_left_out == 0
    assert any(r.method == "POST" and r.name == f"POST {r.target}" for r in work.requests)


def test_common_log_read_as_combined_skips_every_line(tmp_path):
    path = write_log(tmp_path, "common", n=50, garbage=0.0)
    with pytest.raises(TrafficError, match="no line parses as the combined format"):
        accesslog.read(path, log_format="combined")


def test_gzip_read_directly(tmp_path):
    plain = accesslog.read(write_log(tmp_path, "nginx"))
    gz = accesslog.read(write_log(tmp_path, "nginx", name="access.log.1.gz"))
    assert gz[0] == plain[0]
    assert gz[1].parsed == plain[1].parsed


def test_top_paths_kept_and_the_rest_summarised(tmp_path):
    lines = [line("nginx", i, f"/p{i % 10}", 200) for i in range(100)]
    path = tmp_path / "a.log"
    path.write_text("\n".join(lines))
    work, traffic = accesslog.read(path, top=3)
    assert len(work.requests) == 3 and traffic.kept == 3 and traffic.distinct == 10
    assert traffic.kept_share == pytest.approx(0.3)
    assert traffic.rest.startswith("7 more distinct requests (70 requests)")


def test_unparseable_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "junk.log"
    path.write_text("hello\nworld\n")
    with pytest.raises(TrafficError, match="no line parses"):
        accesslog.read(path)
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.tune", "--access-log", str(path), "--minutes", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no line parses" in done.stderr


def test_unknown_log_format_is_one_line_exit_2(tmp_path):
    path = write_log(tmp_path, "nginx", n=20)
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.tune", "--access-log", str(path), "--log-format", "w3c"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--log-format" in done.stderr


def har_file(tmp_path: Path) -> Path:
    def entry(method, url, status, headers=(), body=None):
        request = {"method": method, "url": url, "headers": [{"name": k, "value": v} for k, v in headers]}
        if body is not None:
            request["postData"] = {"mimeType": "application/json", "text": body}
        return {"request": request, "response": {"status": status}, "startedDateTime": "2026-12-08T03:10:05Z"}

    auth = [("Cookie", "session=abc"), ("Authorization", "Bearer t"), ("Accept", "text/html"),
            (":authority", "x")]  # fmt: skip
    entries = [
        entry("GET", "http://127.0.0.1:8000/", 200, auth),
        entry("GET", "http://127.0.0.1:8000/", 200, auth),
        entry("GET", "http://127.0.0.1:8000/nope?x=1", 404, auth),
        entry("POST", "http://127.0.0.1:8000/echo", 200, [("Content-Type", "application/json")], '{"a": 1}'),
        entry("GET", "https://fonts.example.test/font.woff2", 200),
        entry("GET", "http://127.0.0.1:8000/favicon.ico", 0),
    ]
    path = tmp_path / "rec.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    return path


def test_har_keeps_methods_bodies_and_drops_auth(tmp_path):
    work, traffic = har.read(har_file(tmp_path))
    names = {r.name: r for r in work.requests}
    assert set(names) == {"/", "/nope?x=1", "POST /echo"}
    assert names["/"].weight == 2 and names["/"].headers == (("Accept", "text/html"),)
    assert names["/nope?x=1"].expect == (404,)
    assert names["POST /echo"].body == '{"a": 1}'
    assert traffic.skipped == {"another origin than http://127.0.0.1:8000": 1, "no answer recorded": 1}
    assert traffic.busiest_minute_rps == pytest.approx(4 / 60)  # the 4 answered entries to the origin


def test_har_keeps_auth_when_asked(tmp_path):
    work, _ = har.read(har_file(tmp_path), keep_auth=True)
    root = next(r for r in work.requests if r.name == "/")
    assert ("Cookie", "session=abc") in root.headers and ("Authorization", "Bearer t") in root.headers


def test_not_a_har(tmp_path):
    path = tmp_path / "x.har"
    path.write_text("[1, 2]")
    with pytest.raises(TrafficError, match="not a HAR file"):
        har.read(path)


def test_workload_round_trips_and_expects_no_5xx(tmp_path):
    w = workload.Workload(
        (
            workload.Request("/a", 3.0, expect=(404,)),
            workload.Request("/b", 1.0, "POST", (("X", "1"),), "hi"),
        ),
        expect=(410, 503),
    )
    back = workload.read(w.write(tmp_path / "w.json"))
    assert back == w
    assert back.expected_by_name() == {"/a": {404, 410}, "POST /b": {410}}
    assert back.weights() == [("/a", 3.0), ("POST /b", 1.0)]


def replayed(tmp_path: Path, work: workload.Workload) -> list[dict]:
    """The per-request records of one short ladder of ``work`` against the demo app (gunicorn sync 1x1)."""
    session = Session(
        app=targets.OUR_APP,
        paths=work.weights(),
        slo=Slo({95.0: 500.0}),
        cores=sorted(os.sched_getaffinity(0))[:1],
        out=tmp_path,
        seed=3,
        workload=work,
    )
    served = serve_ladder(session, Shape(family(targets.TARGETS["gunicorn-sync"]), 1, 1), [20.0, 20.0], 1.5)
    assert served.run is not None, served.error
    return requests_only(served.run.records)


@pytest.mark.slow
def test_expected_answers_are_no_errors_in_the_generator_or_calibration(tmp_path):
    """A recorded 404 is the path's normal answer: ok in the records, no app error in calibration."""
    requests = (
        workload.Request("/", 3.0),
        workload.Request("/nope", 1.0, expect=(404,)),
        workload.Request("/echo", 1.0, "POST", (("Content-Type", "text/plain"),), "hello"),
    )
    records = replayed(tmp_path / "a", workload.Workload(requests))
    by_name: dict[str, list[dict]] = {}
    for r in records:
        by_name.setdefault(calibrate.path_of(r), []).append(r)
    assert set(by_name) == {"/", "/nope", "POST /echo"}
    assert {r["status"] for r in by_name["/nope"]} == {404} and all(r["ok"] for r in by_name["/nope"])
    assert {r["status"] for r in by_name["POST /echo"]} == {200}
    costs = calibrate.path_costs(records, dict(workload.Workload(requests).weights()), 1.0)
    assert all(not p.errors for p in costs)
    assert app_errors(costs, 0.001) == ""

    unexpected = replayed(tmp_path / "b", workload.Workload((requests[0], workload.Request("/nope", 1.0))))
    costs = calibrate.path_costs(unexpected, {"/": 3.0, "/nope": 1.0}, 1.0)
    assert next(p for p in costs if p.name == "/nope").errors["404"] > 0
    assert "the app's own errors" in app_errors(costs, 0.001)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--expect-status", "503"], ["bad status", "5xx"]),
        (["--expect-status", "40x"], ["bad status"]),
        (["--max-in-flight", "0"], ["--max-in-flight", "1 to"]),
        (["--keep-auth"], ["--keep-auth", "--har"]),
        (["--log-format", "common"], ["--log-format", "--access-log"]),
        (["--path", "/a", "--har", "x.har"], ["--path", "--har"]),
        (["--har", "/no/such.har"], ["--har", "/no/such.har"]),
    ],
)
def test_bad_traffic_flags(args, words):
    assert_one_line_error(run_module("loadtest.tune", *args, timeout=120), *words)
