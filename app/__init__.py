"""The demo Flask app that every server model in wsgi-lab runs.

Importable as ``app:app`` so that our server, gunicorn, granian, uWSGI and Flask's
own development server all load exactly the same object.  (A plain attribute, not
built lazily: uWSGI looks the callable up in the module's dict.)

What every response says about who served it is computed by
``loadtest/inserver/identity.py``, which the bring-your-own wrapper uses too.
"""

from app.views import app

__all__ = ["app"]
