"""Code that runs inside the server under test: ``app/`` and any bring-your-own app import it.

Stdlib only (psutil where installed, ``procfs`` otherwise), since it is loaded into every server we
measure, a team's too (staged under a unique name by ``loadtest/run/shim.py``): docs/architecture.md.
"""
