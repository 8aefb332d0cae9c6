# wsgi-lab: one image for every service of docker-compose.yml (our server in each
# mode, gunicorn, Flask's dev server, locust master/workers, the comparison runner).
#
# Classic builder only (no BuildKit syntax). The base may be the real python:3.12-slim
# (python at /usr/local/bin) or a Debian stand-in (python3 at /usr/bin): nothing below
# names an interpreter path, the venv is made with whatever `python3` the base offers.
#
# BASE_IMAGE picks the interpreter every service runs on, e.g. a free-threaded build:
#   docker compose build --build-arg BASE_IMAGE=<an image whose python3 is 3.14t>
# The servers report what they ran on (GET /_lab/usage: version, GIL on or off), and
# every comparison row and env.json record it.
ARG BASE_IMAGE=python:3.12-slim

# --- build stage: the pinned runtime dependencies in a venv -------------------------
FROM ${BASE_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
COPY requirements.txt /tmp/requirements.txt
# Wheels only: nothing is compiled, so no compiler ever enters an image. Only
# requirements.txt (runtime) -- the dev/test tools (playwright, ruff) stay out.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt

# --- runtime stage -------------------------------------------------------------------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="wsgi-lab" \
      org.opencontainers.image.description="One Flask app under several WSGI server models, plus locust."

# A fixed, non-root uid: files it writes are recognisable, and nothing runs as root.
RUN groupadd --system --gid 10001 lab \
 && useradd --system --uid 10001 --gid lab --home-dir /home/lab --create-home --shell /usr/sbin/nologin lab

COPY --from=deps /opt/venv /opt/venv

WORKDIR /srv/wsgi-lab
COPY app/ app/
COPY server/ server/
COPY loadtest/ loadtest/
COPY docker/ docker/
RUN python3 -m compileall -q app server loadtest docker >/dev/null

# PYTHONPATH: `python -m server`, `gunicorn app:app` and `locust -f loadtest/...`
# find the project from any working directory. MPLCONFIGDIR: matplotlib needs a
# writable cache even when the comparison runs under another uid (see docker/).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv/wsgi-lab \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib

USER lab
# No EXPOSE: one image serves two roles (a server on 8000, locust on 8089 and 5557),
# so each compose service declares the ports of its own role.
# Exec form everywhere, so the server is PID 1 and receives SIGTERM itself.
CMD ["python", "-m", "server", "--mode", "threaded", "--bind", "0.0.0.0:8000", "app:app"]
