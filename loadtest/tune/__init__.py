"""``make tune``: measure the user's app and recommend a server, worker class, workers and threads.

One module per job, in the order a run uses them:

- ``budget``      the command line: workload, objectives, CPU and memory budget (one-line errors)
- ``candidates``  the shapes a registry target can take (workers x threads), found from its options
- ``calibrate``   per path: mean CPU and wall time in the app, its error answers; memory of a
  worker and of a thread -- measured
- ``model``       predicted capacity and memory of a shape (pure: Little's law, CPU, the GIL)
- ``ladder``      the arrival-rate steps of one measurement and their verdicts (pure)
- ``measure``     one shape measured at target arrival rates (server pinned to the budget's cores)
- ``search``      which shapes to measure, in what order, within the time budget (pure policy)
- ``recommend``   the recommendation, the baseline, the margin, the why, the binding limit (pure)
- ``report``      recommendation.json, the record every rendering reads (pure)
- ``deploy``      deploy/compose.yml and deploy/kubernetes.yaml for the recommended shape
- ``main``        the run: progress lines, the results directory; rendering is in
  ``loadtest/reporting/recommendation.py``

Runs in the runner process: it never imports locust (gevent would patch threads).
"""
