"""Error paths of `python -m loadtest.compare`.

Bad arguments: one-line errors, exit 2.  Failing targets: reported in their row, exit 1.
"""

from __future__ import annotations

import http.server
import json
import socket
import struct
import textwrap
import threading

import pytest

from tests.support import assert_one_line_error, run_compare


def test_unknown_target(tmp_path):
    result = run_compare("--targets", "lab-single,gunicron", "--out", str(tmp_path / "x"))
    assert_one_line_error(result, "gunicron", "lab-single")  # names the culprit and the choices
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("duration", ["0", "abc", "-5", "1.5", "99999"])
def test_bad_duration(duration):
    assert_one_line_error(run_compare("--duration", duration), "duration", duration)


def test_unreachable_host():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        result = run_compare("--hosts", f"lab-single=http://127.0.0.1:{port}", "--duration", "2")
    assert_one_line_error(result, "lab-single", "unreachable")


def test_malformed_hosts_entry():
    assert_one_line_error(run_compare("--hosts", "lab-single:8000"), "--hosts", "lab-single:8000")


def test_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_compare("--port", str(port), "--targets", "lab-single", "--duration", "2")
    assert_one_line_error(result, str(port), "in use")


def test_venv_without_a_python(tmp_path):
    assert_one_line_error(run_compare("--venv", str(tmp_path), "--duration", "2"), "--venv", "bin/python")


def test_venv_and_hosts_do_not_mix(tmp_path):
    result = run_compare("--venv", str(tmp_path), "--hosts", "lab-single=http://127.0.0.1:9")
    assert_one_line_error(result, "--venv", "--hosts")


def test_bad_app_spec():
    assert_one_line_error(run_compare("--app", "not a spec"), "not a module name")


def test_an_app_that_does_not_import_is_refused_before_any_target_starts():
    assert_one_line_error(run_compare("--app", "nonexistent:app"), "cannot import 'nonexistent'")


FAILS_IN_A_SERVER = """
    import os

    if os.environ.get("LAB_SERVER_MODEL"):  # imports for the check, not in a target
        import nonexistent
"""


def test_target_that_fails_to_start_is_reported_with_its_stderr(tmp_path):
    (tmp_path / "serverless.py").write_text(textwrap.dedent(FAILS_IN_A_SERVER) + "app = print\n")
    result = run_compare(
        "--app",
        "serverless:app",
        "--targets",
        "lab-single,gunicorn-sync",
        "--scenario",
        "hello",
        "--duration",
        "2",
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    tmp_path = tmp_path / "out"
    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert [r["target"] for r in rows] == ["lab-single", "gunicorn-sync"]
    for row in rows:
        assert row["error"].startswith("failed to start"), row
        assert "nonexistent" in row["stderr_tail"]
    page = (tmp_path / "report.html").read_text()
    assert "failed to start" in page and "No module named" in page and "nonexistent" in page
    assert "failed to start" in (tmp_path / "report.md").read_text()


BROKEN_FOR_SINGLE = """
    import os
    import time

    if os.environ.get("LAB_SERVER_MODEL") == "lab-single":
        raise RuntimeError("this app refuses to run under lab-single")

    def app(environ, start_response):
        if environ["PATH_INFO"] != "/":  # no /health here
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        time.sleep(0.05)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
"""

DIES_AFTER_A_FEW = """
    import os
    import signal

    served = 0

    def app(environ, start_response):
        global served
        served += 1
        if served > 20:
            os.kill(os.getpid(), signal.SIGKILL)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
"""


def test_one_failing_target_does_not_stop_the_others(tmp_path):
    (tmp_path / "picky.py").write_text(textwrap.dedent(BROKEN_FOR_SINGLE))
    out = tmp_path / "out"
    result = run_compare(
        "--app",
        "picky:app",
        "--targets",
        "lab-single,lab-threaded",
        "--scenario",
        "hello",
        "--users",
        "3",
        "--duration",
        "2",
        "--out",
        str(out),
        cwd=tmp_path,  # bring-your-own modules import from the caller's directory
    )
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {r["target"]: r for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert "refuses to run under lab-single" in rows["lab-single"]["stderr_tail"]
    ok = rows["lab-threaded"]
    assert ok["error"] == "" and ok["requests"] > 0 and ok["failures"] == 0
    # the wrapper adds identity headers to someone else's app; it has no /health
    assert ok["pids"] == 1 and ok["threads"] >= 2
    assert any("no /health" in n for n in ok["notes"])


def test_target_that_dies_during_the_run(tmp_path):
    (tmp_path / "fragile.py").write_text(textwrap.dedent(DIES_AFTER_A_FEW))
    out = tmp_path / "out"
    result = run_compare(
        "--app",
        "fragile:app",
        "--targets",
        "lab-single",
        "--scenario",
        "hello",
        "--users",
        "2",
        "--duration",
        "3",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    row = json.loads((out / "summary.json").read_text())["rows"][0]
    assert row["error"].startswith("target died during the run"), row
    assert "target died" in (out / "report.html").read_text()


class ResettingHandler(http.server.BaseHTTPRequestHandler):
    """Answers /health; every other request gets its connection reset (SO_LINGER 0, then close)."""

    def do_GET(self) -> None:
        if self.path == "/health":
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def log_message(self, *_args) -> None:
        pass


def test_connection_resets_are_counted(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ResettingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_compare(
            "--hosts", f"resetter={url}", "--scenario", "hello", "--users", "2", "--processes", "1",
            "--duration", "3", "--out", str(tmp_path),
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    row = json.loads((tmp_path / "summary.json").read_text())["rows"][0]
    assert row["errors"]["connection_reset"] > 0, row["errors"]
    assert row["errors"]["connection_reset"] == row["failures"] == row["requests"]
    assert row["per_round"][0]["errors"]["connection_reset"] > 0
    assert any("/_lab/usage" in note for note in row["notes"])  # a server that cannot report its CPU
