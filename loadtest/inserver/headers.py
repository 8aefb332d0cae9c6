"""The identity headers' names: declared once, imported by everything that writes or reads them.

Writers: the demo app (``app/views.py``) and the bring-your-own wrapper (``byo``), inside the
server under test.  Reader: locust's recorder (``loadtest/generator/locustfile.py``), inside
locust.  The tests, the browser probe's page test and the compose test check against these names.
Names only, no imports, so both processes can load it; what each header means is in the README.
"""

HEADER_MODEL = "X-Server-Model"
HEADER_PID = "X-Worker-Pid"
HEADER_THREAD = "X-Worker-Thread"
HEADER_START = "X-Request-Start"
HEADER_END = "X-Request-End"
IDENTITY_HEADERS = (HEADER_MODEL, HEADER_PID, HEADER_THREAD, HEADER_START, HEADER_END)
