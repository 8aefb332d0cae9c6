"""Code that runs inside the server under test: ``app/`` and any bring-your-own app import it.

Stdlib and psutil only (``devserver`` also werkzeug, which Flask brings, and ``server.oneline``,
the stdlib-only flag parser): whatever is imported here is loaded into every server we measure,
so never locust, gevent or matplotlib, and nothing else from ``loadtest``.
"""
