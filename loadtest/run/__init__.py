"""The comparison runner: arguments and stories, starting and stopping servers and locust, the run's record.

A server under test is started only through a target runner (``runner.py``: the
interface and ``Launch``; ``local.py``: a local process tree; one module per backend).

What it may import: docs/architecture.md (the ``run`` contract in pyproject.toml).
"""
