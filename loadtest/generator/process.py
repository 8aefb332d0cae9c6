"""What every locust process of ours shares: its role in the run, its options, a fresh clock.

A locust process either sends requests (a worker, or the local runner), gathers what
the senders found (the master, or the local runner), or both.  ``install`` adds what
both of our locustfiles (``locustfile.py``, ``arrivals.py``) need from locust's
process itself; it knows nothing of scenarios, targets or records.
"""

from __future__ import annotations

import gevent
import locust.stats
from locust import events
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

# Flush --csv files every 2 s instead of every 10 s, so the compare runner can
# print live requests/s (a documented knob of locust's CSV writer).
CSV_FLUSH_S = 2


def gathers(environment) -> bool:
    """This process keeps the run's stats and records (the master, or the local runner)."""
    return isinstance(environment.runner, MasterRunner | LocalRunner)


def sends(environment) -> bool:
    """This process sends requests (a worker, or the local runner)."""
    return isinstance(environment.runner, WorkerRunner | LocalRunner)


def option(environment, name: str, default):
    """A parsed command-line option, or ``default`` where locust parsed none (a library run)."""
    options = environment.parsed_options
    return getattr(options, name, default) if options is not None else default


def fresh_loop_clock(**_kw) -> None:
    """Refresh gevent's cached clock before locust sets its ``--run-time`` timer.

    gevent timers count from the time the loop cached at its last iteration.
    Importing a locustfile and locust's setup run before the loop turns again, and
    on a busy machine they take seconds: ``spawn_later(run_time)`` then fires that
    many seconds early (measured: 0.8 s of a 4 s run under load average 20).
    ``init`` fires just before locust sets the timer.
    """
    gevent.get_hub().loop.update_now()


_installed: list[bool] = []


def install() -> None:
    """Set the CSV flush interval and refresh the clock at ``init``; a second call does nothing."""
    if _installed:
        return
    _installed.append(True)
    locust.stats.CSV_STATS_FLUSH_INTERVAL_SEC = CSV_FLUSH_S
    events.init.add_listener(fresh_loop_clock)
