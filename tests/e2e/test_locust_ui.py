"""locust's web UI with wsgi-lab's extension, in a real headless Chromium, against real servers.

locust runs as a local process with the project's locustfile and ``LAB_HOSTS``
naming three servers this module starts (lab-single, lab-threaded and
gunicorn -w 4 from the registry's own command, on free ports); the browser uses
the start form as a person would. What is asserted is what a person reads:
locust's own header and stats table, the wsgi-lab tab, the form's messages.
Screenshots land in ``test-artifacts/``.

Chromium and the skip/``REQUIRE_BROWSER`` rule are the ``browser`` fixture's (``conftest.py``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.registry.targets import DEMO_MODULE, TARGETS
from tests.browsing import LocustPage, locust_ui, requests_served
from tests.support import free_port, lab_server, running

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

SERVERS = ("lab-single", "lab-threaded", "gunicorn-sync")
IO_REQUEST = "io /sleep 0.5s"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """name -> URL of three real servers, as LAB_HOSTS would list them."""
    ports = {name: free_port() for name in SERVERS}
    gunicorn = TARGETS["gunicorn-sync"].command(DEMO_MODULE, ports["gunicorn-sync"])[1:]  # python <args>
    with (
        lab_server("single", ports["lab-single"]),
        lab_server("threaded", ports["lab-threaded"]),
        running(gunicorn, ports["gunicorn-sync"], stderr=subprocess.DEVNULL),
    ):
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


@pytest.fixture
def ui(browser, servers, tmp_path) -> Iterator[LocustPage]:
    with locust_ui(servers, tmp_path / "locust.log") as base:
        page = LocustPage(browser, base)
        try:
            yield page
            assert page.errors == [], page.errors
        finally:
            page.close()


def run_from_the_form(ui: LocustPage, target: str, servers: dict[str, str], min_responses: int) -> dict:
    ui.pick(target)
    assert ui.field("host") == servers[target]
    # The form's user classes are ticked by the wsgi-lab script after the form appears: started
    # before it is done, another class runs too (a "slow / @ gunicorn-sync" row in the stats).
    ui.wait_for_classes(["IoUser"])
    ui.start()
    row = ui.wsgi_lab_row(target, min_responses)
    assert ui.header_host() == servers[target]
    return row


def test_the_start_form_asks_for_the_server_first(ui: LocustPage, servers: dict[str, str]) -> None:
    form = ui.page.locator("text=Start new load test").locator("xpath=..")
    first = form.locator("xpath=./*[2]")
    assert first.get_attribute("id") == "wsgi-lab-target"  # right under the title, above everything else
    assert ui.targets() == [*SERVERS, "none"]  # LAB_HOSTS order, then "other"
    # The first server is proposed, and its URL is what locust's Host field holds.
    assert ui.page.input_value("#wsgi-lab-target-select") == "lab-single"
    assert ui.field("host") == servers["lab-single"]
    ui.wait_for_classes(["IoUser"])  # one scenario, not all four
    assert (ui.field("userCount"), ui.field("spawnRate")) == ("10", "10")
    ui.screenshot("locust-ui-start-form")
    # Typing a known URL selects its server; anything else is "other".
    ui.page.fill("form input[name=host]", servers["lab-threaded"])
    assert ui.page.input_value("#wsgi-lab-target-select") == "lab-threaded"
    ui.page.fill("form input[name=host]", "http://example.invalid:8000")
    assert ui.page.input_value("#wsgi-lab-target-select") == "none"


def test_lab_single_run_names_its_server_and_shows_one_lane(ui: LocustPage, servers: dict[str, str]) -> None:
    before = requests_served(servers["lab-threaded"])
    row = run_from_the_form(ui, "lab-single", servers, min_responses=6)
    assert (row["processes"], row["thread lanes"], row["max in flight"]) == ("1", "1", "1")
    assert "at most 1 in flight" in row["answer"] and row["answer"].startswith("lab-single:")
    chart = ui.swimlanes("lab-single", min_lanes=1, min_bars=6)
    assert len(chart["lanes"]) == 1 and chart["lanes"][0].startswith("pid ")  # one lane
    assert chart["aboveTable"] and chart["cores"] >= 1
    ui.screenshot("locust-ui-swimlanes-lab-single")
    assert ui.stats_names() == [f"{IO_REQUEST} @ lab-single", "Aggregated"]
    ui.screenshot("locust-ui-lab-single-stats")
    ui.tab("wsgi-lab")
    ui.screenshot("locust-ui-lab-single-wsgi-lab")
    ui.stop_test()
    # Kept after the run, and nothing went to the other server.
    assert ui.wsgi_lab_row("lab-single", 6)["max in flight"] == "1"
    assert requests_served(servers["lab-threaded"]) == before + 1  # this /whoami only


def test_a_second_run_on_another_server_shows_that_server(ui: LocustPage, servers: dict[str, str]) -> None:
    run_from_the_form(ui, "lab-single", servers, min_responses=3)
    ui.stop_test()
    ui.new_test()
    # The New-test form proposes what was just loaded, and the classes that ran.
    assert ui.page.input_value("#wsgi-lab-target-select") == "lab-single"
    assert ui.field("host") == servers["lab-single"]
    ui.wait_for_classes(["IoUser"])
    single_before = requests_served(servers["lab-single"])
    row = run_from_the_form(ui, "lab-threaded", servers, min_responses=30)
    chart = ui.swimlanes("lab-threaded", min_lanes=4, min_bars=30)  # a thread per connection: several lanes
    assert len({lane.split(" / ")[0] for lane in chart["lanes"]}) == 1  # all in one process
    assert chart["cores"] >= 1
    ui.screenshot("locust-ui-swimlanes-lab-threaded")
    assert ui.header_host() == servers["lab-threaded"]
    assert row["processes"] == "1"
    assert int(row["max in flight"]) >= 4  # 10 users, a thread per connection
    assert row["answer"].startswith("lab-threaded: 1 process,")
    ui.screenshot("locust-ui-two-servers-wsgi-lab")
    # Both servers keep their own row; the first still says one at a time.
    rows = {r["server"]: r for r in ui.table()}
    assert rows["lab-single"]["max in flight"] == "1"
    assert ui.stats_names() == [f"{IO_REQUEST} @ lab-threaded", "Aggregated"]
    ui.stop_test()
    assert requests_served(servers["lab-single"]) == single_before + 1  # the new run went elsewhere


def test_lab_single_then_gunicorn_sync_each_named_in_the_header(
    ui: LocustPage, servers: dict[str, str]
) -> None:
    """The stale-host defect as first seen: lab-single, then gunicorn-sync, from the form."""
    run_from_the_form(ui, "lab-single", servers, min_responses=3)
    assert ui.header_host() == servers["lab-single"]
    ui.stop_test()
    ui.new_test()
    row = run_from_the_form(ui, "gunicorn-sync", servers, min_responses=16)
    assert ui.header_host() == servers["gunicorn-sync"]
    assert (row["processes"], row["thread lanes"]) == ("4", "4")  # -w 4: four sync workers
    assert 2 <= int(row["max in flight"]) <= 4
    assert row["answer"].startswith("gunicorn-sync: 4 processes, 1 thread each")
    assert ui.stats_names() == [f"{IO_REQUEST} @ gunicorn-sync", "Aggregated"]
    ui.stop_test()


def test_an_unreachable_host_is_refused_with_the_servers_to_use(
    ui: LocustPage, servers: dict[str, str], tmp_path: Path
) -> None:
    closed = f"http://localhost:{free_port()}"
    ui.pick("none")
    ui.page.fill("form input[name=host]", closed)
    ui.start()
    alert = ui.page.locator("[role=alert]").filter(has_text="cannot be reached")
    alert.wait_for(timeout=15_000)
    text = alert.inner_text()
    assert closed in text and "refused" in text.lower()
    assert servers["lab-single"] in text and servers["lab-threaded"] in text
    ui.screenshot("locust-ui-unreachable-host")
    assert "Start new load test" in ui.page.inner_text("body")  # nothing started
    log = (tmp_path / "locust.log").read_text()
    assert re.search(rf"ERROR/wsgi-lab: {re.escape(closed)} cannot be reached", log), log[-2000:]


def test_distributed_workers_load_the_picked_server(browser, servers, tmp_path) -> None:
    """Master plus two worker processes: the picked server reaches the workers before they start."""
    with locust_ui(servers, tmp_path / "locust.log", workers=2) as base:
        ui = LocustPage(browser, base)
        try:
            ui.page.wait_for_selector("text=Workers")
            threaded_before = requests_served(servers["lab-threaded"])
            row = run_from_the_form(ui, "lab-single", servers, min_responses=6)
            assert (row["processes"], row["max in flight"]) == ("1", "1")
            ui.screenshot("locust-ui-distributed-lab-single")
            ui.stop_test()
            assert requests_served(servers["lab-threaded"]) == threaded_before + 1  # this /whoami only
            assert ui.errors == [], ui.errors
        finally:
            ui.close()
