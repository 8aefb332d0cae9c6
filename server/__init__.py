"""wsgi-lab's WSGI server: one HTTP/1.1 + PEP 3333 core, three concurrency modes.

Where things live:

- ``protocol``   -- HTTP/1.1 on one socket through h11 (limits, timeouts, framing)
- ``wsgi``       -- PEP 3333: environ, ``wsgi.input``, ``start_response``, ``write``
- ``connection`` -- the keep-alive loop that serves one connection, request after request
- ``base``       -- listening socket, accept loop, signals, graceful shutdown
- ``modes``      -- single / threaded / forking: the only place with threads or ``os.fork``
- ``config``/``cli`` -- options, ``LAB_*`` environment variables, ``python -m server``
"""

__version__ = "0.1.0"
