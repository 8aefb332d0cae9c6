"""wsgi-lab's WSGI server: one HTTP/1.1 + PEP 3333 core, several concurrency models.

Where things live:

- ``protocol``   -- HTTP/1.1 through h11, sans-IO: the core (bytes in, requests out) and the driver interface
- ``wsgi``       -- PEP 3333: environ, ``wsgi.input``, ``start_response``, ``write``
- ``connection`` -- the blocking socket driver and the keep-alive loop that serves one connection
- ``base``       -- listening socket, accept loop, signals, graceful shutdown, the hooks a model fills in
- ``workers/``   -- the models, one module each, the only place with threads or ``os.fork``:
  ``single``, ``threaded``, ``forking`` (fork: ``ForkingServer.handle``), ``prefork`` + ``arbiter``
  (fork: ``Arbiter.spawn``), ``event``; ``workers.MODELS`` maps ``--mode`` to a class
- ``config``/``cli`` -- options, ``LAB_*`` environment variables, ``python -m server``
"""

__version__ = "0.1.0"
