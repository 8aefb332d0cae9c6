"""Pure figures and sampling: a round's figures, the row over rounds, statistics, evidence, CPU sampling.

Usable from any process (the runner, the renderer, locust's web UI): stdlib, psutil, the registry and
``loadtest.inserver``. Never locust, gevent or matplotlib.
"""
