"""``make bench: hello-world requests/s and CPU per request with wrk``.

The command is ``main.py``; what it may import: docs/architecture.md.
"""
