"""``python -m loadtest.report: render the report of a run directory again``.

The command is ``main.py``; what it may import: docs/architecture.md.
"""
