"""Access logs written by real servers from real requests to the demo app, for tune's ``--access-log``.

``python -m tests.access_logs OUT N`` starts gunicorn (sync, 2 workers, ``--access-logfile``:
gunicorn's default format) on the demo app and Debian's nginx in front of it (``access_log``
in nginx's ``combined`` format), sends ``N`` requests through nginx (a fixed weighted mix,
``MIX``, 8 at a time), stops both, and writes ``OUT/gunicorn.log`` and ``OUT/nginx.log`` with
``GARBAGE`` of their lines replaced by lines no server writes (a TLS handshake sent to the plain
port as nginx logs it, a line cut short, a blank line), seeded, so the parser's skip counts
can be checked. Only 127.0.0.1; every process stopped by its pid. Not a test module.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import ROOT, free_port, stop, wait_for_health

MIX = [("GET", "/", 40), ("GET", "/sleep?s=0.01", 20), ("GET", "/sleep?s=0.05", 10), ("GET", "/cpu?ms=2", 15),
       ("GET", "/whoami", 5), ("GET", "/missing", 8), ("POST", "/echo", 2)]  # fmt: skip
GARBAGE = 0.01
JUNK = [
    '"\\x16\\x03\\x01\\x00\\xf1\\x01\\x00\\x00\\xed\\x03\\x03" 400 157 "-" "-"',  # TLS sent to the plain port
    "10.0.0.7 - - [08/Dec/2026:03:1",  # a line cut short
    "",
]
NGINX_CONF = """
daemon off; master_process off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {dir}/access.log combined;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  upstream app {{ server 127.0.0.1:{app}; keepalive 8; }}
  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; proxy_http_version 1.1;
           proxy_set_header Connection ""; }} }}
}}
"""


def send(port: int, method: str, target: str) -> int:
    data = b"x" * 512 if method == "POST" else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{target}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def with_garbage(lines: list[str], rng: random.Random) -> list[str]:
    return [rng.choice(JUNK) if rng.random() < GARBAGE else line for line in lines]


def main(argv: list[str]) -> int:
    out, n = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 10_000
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wsgi-lab-logs-"))
    app_port, port = free_port(), free_port()
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{app_port}", "--workers", "2",
         "--access-logfile", str(work / "gunicorn.log"), "--no-control-socket", "app:app"],
        cwd=ROOT,
    )  # fmt: skip
    (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, app=app_port, port=port))
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(work / "nginx.conf")])
    rng = random.Random(2026)
    try:
        wait_for_health(app_port, proc=gunicorn)
        wait_for_health(port)
        picks = rng.choices(MIX, [w for *_, w in MIX], k=n)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda p: send(port, p[0], p[1]), picks))
    finally:
        stop(nginx)
        stop(gunicorn)
    for name in ("gunicorn.log", "access.log"):
        lines = (work / name).read_text().splitlines()
        lines = [ln for ln in lines if "/health" not in ln]  # the readiness checks, not the traffic
        target = out / ("nginx.log" if name == "access.log" else name)
        target.write_text("\n".join(with_garbage(lines, rng)) + "\n")
        print(f"{target}: {len(lines)} lines", flush=True)
    print(f"sent {n}: " + ", ".join(f"{s} x {answers.count(s)}" for s in sorted(set(answers))), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
