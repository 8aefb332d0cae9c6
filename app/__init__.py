"""The demo Flask app that every server model in wsgi-lab runs.

Importable as ``app:app`` so that our server, gunicorn and Flask's own
development server all load exactly the same object.

The Flask app is built on first access (PEP 562 ``__getattr__``), not when the
package is imported: the load generator and the bring-your-own wrapper import
``app.identity`` for the header names and the CPU clock, and must not load
Flask views (or their imports) into locust's process or into someone else's
server to get them.
"""

from __future__ import annotations

__all__ = ["app"]


def __getattr__(name: str):
    if name == "app":
        from app.views import app

        return app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
