"""The comparison runner: arguments and stories, starting and stopping servers and locust, the run's record.

A server under test is started only through a target runner (``runner.py``: the
interface and ``Launch``; ``local.py``: a local process tree; one module per backend).

Runs in the ``python -m loadtest.compare`` process (and ``bench``/``soak``). May import
``loadtest.measure``, ``loadtest.inserver`` and the registry. Never locust itself (locust runs as
a subprocess) and never matplotlib (drawing is ``loadtest.reporting``'s).
"""
