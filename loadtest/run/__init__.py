"""The comparison runner: arguments and stories, starting and stopping servers and locust, the run's record.

Runs in the ``python -m loadtest.compare`` process (and ``bench``/``soak``). May import
``loadtest.measure``, ``loadtest.inserver`` and the registry. Never locust itself (locust runs as
a subprocess) and never matplotlib (drawing is ``loadtest.reporting``'s).
"""
