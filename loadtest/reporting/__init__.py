"""The renderer: a row's figures as text, the PNG charts, the report and diff pages.

Runs in ``python -m loadtest.report``/``diff`` (and at the end of a comparison). The only
subpackage that may import matplotlib; may import ``loadtest.measure`` and the registry, never
locust.
"""
