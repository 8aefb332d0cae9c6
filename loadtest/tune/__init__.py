"""``make tune``: measure the user's app and recommend a server, worker class, workers and threads.

Its modules, one per job, and what they may import: docs/architecture.md; how it decides: docs/tune.md.
"""
