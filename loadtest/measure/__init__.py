"""Pure figures and sampling, usable from any process: a round's figures, rows, statistics, evidence.

What it may import: docs/architecture.md (the ``measure`` contract in pyproject.toml).
"""
