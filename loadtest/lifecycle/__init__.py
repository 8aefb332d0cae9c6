"""``python -m loadtest.lifecycle: SIGTERM with requests in flight and keep-alive, per target``.

The command is ``main.py``; what it may import: docs/architecture.md.
"""
