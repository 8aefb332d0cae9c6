"""wsgi-lab's load tests and the comparison of servers, laid out by the process each module runs in.

The folder a module sits in says which process imports it, and so what it may import
(ruff's banned imports per directory keep that true; see ``pyproject.toml``):

``catalog.py``, ``targets.py``, ``records.py``
    the registry (targets, scenarios, shared names) and the run records (summary.json, bench.json,
    recommendation.json, env.json typed and versioned). Stdlib only: every process reads them.
``compare.py``, ``report.py``, ``diff.py``, ``bench.py``, ``soak.py``, ``lifecycle.py``
    the entry points, ``python -m loadtest.X``. They may import any subpackage.
``generator/`` (locustfile, arrivals -- make tune's open-loop load --, web UI and its script)
    runs inside locust, gevent-patched. May import locust, ``measure/`` and the registry;
    never matplotlib, and nothing that starts processes.
``inserver/`` (usage, byo, devserver)
    runs inside the server under test (``app/`` imports it). Stdlib and psutil only (the dev
    server also werkzeug, which Flask brings): never locust, gevent or matplotlib.
``run/`` (plan, processes, locustrun, environment, slow)
    the comparison runner: starts servers and locust, collects what they write. May import
    ``measure/``, ``inserver/`` and the registry; never matplotlib (rendering is ``reporting/``'s).
``measure/`` (rounds, rows, stats, change, evidence, cpuwatch)
    pure figures and sampling, usable from any process: stdlib, psutil, the registry and
    ``inserver/``. Never locust or matplotlib.
``reporting/`` (figures, charts, document, comparison, recommendation)
    the renderer: a row's figures as text, the charts, one document outline rendered to Markdown
    and HTML (report, slow-clients report and diff share its skeleton). matplotlib lives here and
    in the entry points only; never locust, never ``run/``.
``tune/`` (budget, candidates, calibrate, model, ladder, measure, search, recommend, report, main)
    ``make tune`` (``python -m loadtest.tune``): a runner like ``run/``, which it uses; ``main.py``
    is its entry point and calls ``reporting/recommendation.py``.
"""
