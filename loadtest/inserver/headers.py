"""The identity headers' names: declared once, imported by everything that writes or reads them.

Writers: the demo app (``app/views.py``) and the bring-your-own wrapper (``byo``), inside the
server under test.  Reader: locust's recorder (``loadtest/generator/recorder.py``), inside
locust.  The tests, the browser probe's page test and the compose test check against these names.
Names only, no imports, so both processes can load it; what each header means is in docs/app.md.
"""

HEADER_MODEL = "X-Server-Model"
HEADER_PID = "X-Worker-Pid"
HEADER_THREAD = "X-Worker-Thread"
HEADER_START = "X-Request-Start"
HEADER_END = "X-Request-End"
HEADER_CPU = "X-Request-Cpu-Ms"  # CPU time the request itself used, ms (identity.py's CpuClock)
HEADER_LANE_KIND = "X-Worker-Lane-Kind"  # LANE_THREAD or LANE_GREENLET
HEADER_LANE_ID = "X-Worker-Lane-Id"  # OS thread id (native) or greenlet id (hex)
IDENTITY_HEADERS = (
    HEADER_MODEL,
    HEADER_PID,
    HEADER_THREAD,
    HEADER_START,
    HEADER_END,
    HEADER_CPU,
    HEADER_LANE_KIND,
    HEADER_LANE_ID,
)
LANE_THREAD = "thread"
LANE_GREENLET = "greenlet"
