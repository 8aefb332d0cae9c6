"""The web UI's guards as settings: when the login and the allowlist turn on, what they accept.

Pure functions of the environment variables; the real locust and Chromium
tests of the same rules are tests/e2e/test_locust_exposed.py.
"""

from __future__ import annotations

import pytest

from loadtest.generator import access

HOSTS = {"lab-single": "http://lab-single:8000", "lab-threaded": "http://lab-threaded:8000"}
PORTS = "lab-single=8001,lab-threaded=8002,waitress=8011"


def settings(**env: str) -> access.Access:
    return access.from_env(HOSTS, env)


@pytest.mark.parametrize(
    ("bind", "exposed"),
    [
        ("", False),  # unset: docker-compose.yml's default, 127.0.0.1
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("10.0.0.5", True),
        ("lab.example", True),  # a name is not known to be loopback: guarded
    ],
)
def test_the_guards_follow_the_bind_address(bind: str, exposed: bool) -> None:
    s = settings(LAB_BIND_ADDR=bind)
    assert (s.exposed, s.login, s.allowlist) == (exposed, exposed, exposed)


def test_login_and_allowlist_each_turn_on_or_off() -> None:
    assert settings(LAB_BIND_ADDR="0.0.0.0", LAB_UI_LOGIN="0").login is False
    assert settings(LAB_UI_LOGIN="1").login is True  # on loopback too, if asked
    opted = settings(LAB_BIND_ADDR="0.0.0.0", LAB_ALLOW_ANY_HOST="1")
    assert (opted.login, opted.allowlist) == (True, False)
    assert settings(LAB_BIND_ADDR="0.0.0.0", LAB_ALLOW_ANY_HOST="0").allowlist is True


@pytest.mark.parametrize(("name", "value"), [("LAB_UI_LOGIN", "yes"), ("LAB_ALLOW_ANY_HOST", "true")])
def test_a_bad_switch_is_an_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}='{value}': expected 1 or 0$"):
        settings(**{name: value})


def test_the_password_is_the_given_one_or_generated_once() -> None:
    given = settings(LAB_UI_PASSWORD="s3cret")
    assert (given.password, given.password_generated) == ("s3cret", False)
    one, two = settings(), settings()
    assert one.password_generated and len(one.password) >= 16
    assert one.password != two.password


@pytest.mark.parametrize(
    "url",
    [
        "http://lab-single:8000",
        "http://lab-single:8000/",
        "HTTP://Lab-Threaded:8000/some/path",
    ],
)
def test_exposed_accepts_the_lab_hosts_servers(url: str) -> None:
    assert settings(LAB_BIND_ADDR="0.0.0.0").refusal(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://lab-single:8001",  # another port of a known name
        "https://lab-single:8000",
        "http://lab-forking:8000",  # a real service, but not in LAB_HOSTS
        "http://127.0.0.1:8001",
        "http://lab-single:8000@victim.example:8000",  # the user-info trick
        "http://victim.example",
        "not a url",
        "",
    ],
)
def test_exposed_refuses_anything_else_naming_the_way_out(url: str) -> None:
    message = settings(LAB_BIND_ADDR="0.0.0.0").refusal(url)
    assert message is not None
    assert message.startswith(f"{url} is not one of this lab's servers")
    assert "LAB_BIND_ADDR=0.0.0.0" in message
    assert "http://lab-single:8000, http://lab-threaded:8000" in message
    assert message.endswith("start the master with LAB_ALLOW_ANY_HOST=1.")


def test_loopback_or_opt_in_accepts_any_url() -> None:
    assert settings().refusal("http://victim.example") is None
    assert settings(LAB_BIND_ADDR="0.0.0.0", LAB_ALLOW_ANY_HOST="1").refusal("http://victim.example") is None


def test_published_urls_on_the_public_address_are_accepted() -> None:
    """What workers on other machines load: the LAB_HOSTS servers on this machine's address."""
    s = settings(LAB_BIND_ADDR="0.0.0.0", LAB_PUBLIC_HOST="10.0.0.5", LAB_PUBLISHED_PORTS=PORTS)
    assert s.published == {"lab-single": "http://10.0.0.5:8001", "lab-threaded": "http://10.0.0.5:8002"}
    assert s.refusal("http://10.0.0.5:8002") is None
    assert s.refusal("http://10.0.0.5:8011") is not None  # waitress: published, but not in LAB_HOSTS
    assert s.refusal("http://10.0.0.6:8002") is not None
    assert "published on this machine: http://10.0.0.5:8001, http://10.0.0.5:8002" in s.refusal("http://x")
    assert "http://10.0.0.5:8001" in s.other_hint()


def test_a_specific_bind_address_is_the_public_one() -> None:
    assert settings(LAB_BIND_ADDR="10.0.0.5", LAB_PUBLISHED_PORTS=PORTS).published["lab-single"] == (
        "http://10.0.0.5:8001"
    )
    assert settings(LAB_BIND_ADDR="0.0.0.0", LAB_PUBLISHED_PORTS=PORTS).published == {}
    v6 = settings(LAB_BIND_ADDR="fd00::5", LAB_PUBLISHED_PORTS=PORTS)
    assert v6.refusal("http://[fd00::5]:8001") is None


def test_a_bad_published_port_list_is_an_error() -> None:
    with pytest.raises(ValueError, match="LAB_PUBLISHED_PORTS: bad entry 'lab-single=x'"):
        settings(LAB_PUBLISHED_PORTS="lab-single=x")


def test_the_form_says_what_other_accepts() -> None:
    assert settings().other_hint() == "locust loads whatever URL the Host field holds"
    hint = settings(LAB_BIND_ADDR="0.0.0.0").other_hint()
    assert hint.startswith("only the servers in this list are accepted")
    assert "LAB_ALLOW_ANY_HOST=1 on the master allows any URL" in hint
    assert "any URL is accepted" in settings(LAB_BIND_ADDR="0.0.0.0", LAB_ALLOW_ANY_HOST="1").other_hint()
