"""A Flask app on PostgreSQL with a fixed connection pool: what ``--max-in-flight`` is for.

Each worker process opens its own ``psycopg_pool.ConnectionPool`` of exactly
``PGAPP_POOL`` connections (min = max: a fixed pool, opened on the first request of the
process, never before a fork). ``GET /orders?id=N`` takes a connection (waiting at most
``PGAPP_WAIT_S`` for one, else 503 "connection pool exhausted"), runs one query that
holds it for ``PGAPP_QUERY_S`` (``pg_sleep``: the database's time, no CPU here) and
answers the order. A server shape with more requests in flight per process than the pool
holds makes them wait for a connection, then fail; more processes than the database's
``max_connections`` allows fail at the connection. ``GET /pool`` answers the pool's own
figures (requests that waited, their total wait, errors). ``/health`` answers without the
database. The database is ``PGAPP_DSN`` (libpq form, e.g. from ``tests/postgres.py``).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from psycopg_pool import ConnectionPool, PoolTimeout

POOL_SIZE = int(os.environ.get("PGAPP_POOL", "4"))
WAIT_S = float(os.environ.get("PGAPP_WAIT_S", "0.5"))
QUERY_S = float(os.environ.get("PGAPP_QUERY_S", "0.02"))

app = Flask(__name__)
_pools: dict[int, ConnectionPool] = {}  # per process id: a pool opened before a fork is not the child's


def pool() -> ConnectionPool:
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ConnectionPool(
            os.environ.get("PGAPP_DSN", ""), min_size=POOL_SIZE, max_size=POOL_SIZE, timeout=WAIT_S, open=True
        )
    return _pools[pid]


@app.get("/health")
def health():
    return "ok"


@app.get("/orders")
def orders():
    order = request.args.get("id", "1")
    if not order.isdigit():
        return jsonify(error="id must be a number"), 400
    try:
        with pool().connection() as conn:
            row = conn.execute("SELECT %s::int, pg_sleep(%s)", (int(order), QUERY_S)).fetchone()
    except PoolTimeout:
        return jsonify(error="connection pool exhausted", pool=POOL_SIZE), 503
    return jsonify(id=row[0], pool=POOL_SIZE)


@app.get("/pool")
def stats():
    return jsonify(pool().get_stats())
