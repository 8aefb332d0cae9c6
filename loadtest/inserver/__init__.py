"""Code that runs inside the server under test: ``app/`` and any bring-your-own app import it.

Stdlib and psutil only, since it is loaded into every server we measure: docs/architecture.md.
"""
