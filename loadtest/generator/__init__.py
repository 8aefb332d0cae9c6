"""Code that runs inside locust (gevent-patched): the scenarios, the recorder, the web UI and its script.

What it may import: docs/architecture.md (the ``generator`` contract in pyproject.toml).
"""
