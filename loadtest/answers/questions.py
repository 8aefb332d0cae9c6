"""The fixed run behind the README's short answers: which experiments, which picture per question.

One declaration: the command runs these, the page (docs/answers.md) has one section per
``Question`` in this order, and the README's answers table links to the sections' headings.
Each experiment is one ``python -m loadtest.compare`` run with a pinned seed, so the command
that repeats it is the experiment's own line. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

# Ten concurrent clients, one round of 6 s (1 s warm-up), the same seed every time.
USERS = 10
# --settle: the servers' start-up lifts the load average; the rows are not judged busy for it.
SETTLE_S = 45
COMMON = (
    "--users",
    str(USERS),
    "--rounds",
    "1",
    "--duration",
    "6",
    "--seed",
    "33",
    "--settle",
    str(SETTLE_S),
)
SLEEP_S = 0.5
CPU_MS = 50
PROBE = "probe"  # the experiment that is a browser run, not a comparison
PROBE_TARGET = "lab-threaded"  # a thread per connection: whatever limit shows is the browser's
PROBE_N = 10
PROBE_SECONDS = 0.5


@dataclass(frozen=True)
class Experiment:
    name: str  # also the results subdirectory and the pictures' prefix
    scenario: str
    targets: tuple[str, ...]
    options: tuple[str, ...] = ()

    def compare_args(self, out: str, only: tuple[str, ...] = ()) -> list[str]:
        """compare's flags; ``only``: a subset of the targets (to repeat some pictures alone)."""
        return [
            "--scenario",
            self.scenario,
            "--targets",
            ",".join(only or self.targets),
            *COMMON,
            *self.options,
            "--out",
            out,
        ]


@dataclass(frozen=True)
class Picture:
    experiment: str
    target: str

    @property
    def file(self) -> str:
        return f"{self.experiment}-{self.target}.png"


@dataclass(frozen=True)
class Question:
    heading: str  # the page's section heading; the README links to its slug
    pictures: tuple[Picture, ...]


def io(*names: str) -> tuple[Picture, ...]:
    return tuple(Picture("io", n) for n in names)


EXPERIMENTS = (
    Experiment(
        "io",
        "io",
        (
            "flask-dev",
            "flask-dev-nothreads",
            "gunicorn-sync",
            "gunicorn-gthread",
            "gunicorn-gevent",
            "lab-threaded",
            "lab-prefork",
            "granian",
            "uwsgi",
        ),
        ("--sleep-s", str(SLEEP_S)),
    ),
    Experiment("cpu", "cpu", ("lab-threaded", "lab-prefork"), ("--cpu-ms", str(CPU_MS))),
    Experiment("hello", "hello", ("lab-threaded",)),
)

QUESTIONS = (
    Question("Is app.run() single-threaded?", io("flask-dev", "flask-dev-nothreads")),
    Question("What does gunicorn -w 4 do?", io("gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent")),
    Question("What does -w 4 do in our server?", io("lab-prefork", "lab-threaded")),
    Question("Do threaded servers queue hello-world requests?", (Picture("hello", "lab-threaded"),)),
    Question("Why didn't 10 browser tabs wait 10 x 10 s?", (Picture(PROBE, PROBE_TARGET),)),
    Question(
        "Threads or processes for CPU-bound work?",
        (Picture("cpu", "lab-threaded"), Picture("cpu", "lab-prefork")),
    ),
    Question("What do granian and uWSGI do?", io("granian", "uwsgi")),
)

# --short (CI): one server, one picture, so the command cannot rot unseen.
SHORT_EXPERIMENTS = (Experiment("io", "io", ("flask-dev-nothreads",), ("--sleep-s", str(SLEEP_S))),)
SHORT_QUESTIONS = (Question(QUESTIONS[0].heading, io("flask-dev-nothreads")),)

# README answers no timeline can show (yet), with the reason the page gives; they keep their own links.
UNPICTURED = {
    "Why put nginx in front of gunicorn sync?": (
        "the slow-clients run (`make compare COMPARE_ARGS='--scenario slow'`) measures held connections, "
        "and writes no per-request timeline"
    ),
    "How many workers / threads for my app?": (
        "`make tune`'s answer is a recommendation for your app on your machine, not a picture of this run"
    ),
}
