"""The demo Flask app that every server model in wsgi-lab runs.

Importable as ``app:app`` so that our server, gunicorn and Flask's own
development server all load exactly the same object.
"""

from app.views import app

__all__ = ["app"]
