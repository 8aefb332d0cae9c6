"""wsgi-lab's locustfile: the closed-loop scenarios, the recorder, the target and the web UI, wired.

``locust -f loadtest/generator/locustfile.py IoUser`` (or the web UI's class
picker, which this file turns on by default) runs one of the scenarios of
``scenarios.py``.  This file only puts the pieces together, each from its module:

* the user classes (``scenarios.py``), imported here so that locust finds them;
* the recorder of who served each request (``recorder.py``, ``--identity-file``);
* the target (``picking.py``: ``LAB_HOSTS`` and ``--target NAME``);
* the web UI's server picker, wsgi-lab tab and reachability check (``webui.py``),
  and, when ``LAB_BIND_ADDR`` says the UI is published beyond loopback,
  locust's ``--web-login`` with the login and host allowlist of ``access.py``.
"""

from __future__ import annotations

from locust import events

from loadtest.generator import access, picking, process, recorder, scenarios, webui
from loadtest.generator.scenarios import (  # noqa: F401 (locust collects the user classes of this module)
    CpuUser,
    HelloUser,
    IoUser,
    MixedUser,
    SlowClient,
    SlowNormalUser,
)
from loadtest.registry.scenarios import SCENARIO_CLASSES

# Scenario names used by `python -m loadtest.compare --scenario` (kept in registry/scenarios.py).
assert all(name in globals() for names in SCENARIO_CLASSES.values() for name in names.split())

process.install()
picking.install()  # first: the host is settled before anything reads it
scenarios.install()
RECORDER = recorder.install()


@events.init_command_line_parser.add_listener
def ui_defaults(parser) -> None:
    # Running all four scenarios at once is rarely what anyone wants from the
    # UI: show the class picker unless told otherwise.
    parser.set_defaults(class_picker=True)
    # A UI published beyond loopback asks for a password (locust's own login page).
    if picking.lab_access().login:
        parser.set_defaults(web_login=True)


@events.init.add_listener
def install_web_ui(environment, **_kw) -> None:
    if environment.web_ui is not None:
        access.install(environment, picking.lab_access())
        webui.install(environment, picking.lab_hosts(), RECORDER, picking.lab_access())
    if environment.runner is not None and process.sends(environment):
        webui.report_unreachable(environment, picking.lab_hosts())
