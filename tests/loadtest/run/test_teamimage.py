"""A team's image, for real: a mount the container cannot read is one line before anything runs,
and what the image lacks is asked of its own python. Uses the engine's python:3.12-slim (nothing pulled)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from loadtest.run import engine, teamimage
from tests.support import engine_answers

IMAGE = "python:3.12-slim"


@pytest.fixture(scope="module")
def client() -> Iterator:
    if not engine_answers():
        if os.environ.get("REQUIRE_DOCKER", "") not in ("", "0"):
            pytest.fail("REQUIRE_DOCKER is set but no Docker engine answers `docker info`")
        pytest.skip("no Docker engine (../shared/docker-sandbox/start gives one)")
    docker_client = engine.connect()
    try:
        docker_client.images.get(IMAGE)
    except Exception:
        pytest.skip(f"{IMAGE} is not on the engine (nothing is pulled)")
    yield docker_client
    docker_client.close()


def test_a_private_directory_is_readable_as_its_owner_and_one_line_for_another_uid(client, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "app.py").write_text("app = None\n")
    owner = f"{os.getuid()}:{os.getgid()}"
    teamimage.check_readable(client, IMAGE, private, owner)  # the invoking user's uid reads it
    other = "10001:10001" if os.getuid() != 10001 else "10002:10002"
    with pytest.raises(engine.EngineError) as caught:
        teamimage.check_readable(client, IMAGE, private, other)
    line = str(caught.value)
    assert "\n" not in line and str(private) in line and "mode 0700" in line
    assert line.startswith(f"the container (uid {other.split(':')[0]}) cannot read")


def test_the_images_own_python_says_which_servers_it_has(client):
    assert teamimage.present(client, IMAGE, ["json", "gunicorn", "waitress"]) == {"json"}
