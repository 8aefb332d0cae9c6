"""``make compare: run the server models under load and write the report``.

The command is ``main.py``; what it may import: docs/architecture.md.
"""
