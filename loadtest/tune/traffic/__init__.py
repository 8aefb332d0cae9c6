"""The team's own traffic as a workload: access logs (``accesslog``) and browser recordings (``har``).

Both return a ``registry.workload.Workload`` and a ``Traffic`` summary; a file that holds nothing
usable raises ``TrafficError`` (one line, exit 2). What this package does not know: how a workload is sent.
"""


class TrafficError(Exception):
    """A recording tune cannot use: reported as one line, exit 2."""
