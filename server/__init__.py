"""wsgi-lab's WSGI server: one HTTP/1.1 + PEP 3333 core, several concurrency models.

The module map and the layers' import rules: docs/architecture.md; the models and flags: docs/server.md.
"""

__version__ = "0.1.0"
