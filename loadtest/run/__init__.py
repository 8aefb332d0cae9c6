"""The comparison runner: arguments and stories, starting and stopping servers and locust, the run's record.

What it may import: docs/architecture.md (the ``run`` contract in pyproject.toml).
"""
