"""Code that runs inside locust (gevent-patched): the scenarios, the recorder, the web UI and its script.

May import locust, gevent, Flask (locust's web UI is Flask), ``loadtest.measure`` and the registry
(``loadtest.catalog``, ``loadtest.targets``). Never matplotlib, never ``loadtest.run`` or
``loadtest.reporting``: a locust worker neither starts servers nor draws charts.
"""
