"""The renderer: a row's figures as text, the PNG charts, the report and diff pages (matplotlib lives here).

What it may import: docs/architecture.md (the ``reporting`` contract in pyproject.toml).
"""
