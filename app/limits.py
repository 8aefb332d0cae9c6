"""The bounds of the endpoints' parameters: the views enforce them, the probe page offers them.

Their own module so that both read one declaration without importing each other.
They keep a typo (``?s=3000``) from tying up a worker for an hour.
"""

from __future__ import annotations

MAX_SLEEP_S = 30.0
MAX_CPU_MS = 10_000.0
MAX_CHUNKS = 1_000
MAX_CHUNK_DELAY_S = 5.0
