"""Which addresses expose the lab beyond this machine: declared once for the compose stack and tune.

The compose stack publishes the locust web UI on ``LAB_BIND_ADDR`` (``loadtest/generator/access.py``
turns its guards on beyond loopback); ``make tune --expect-workers`` binds its locust master and the
servers under test the same way.  Loopback is the default; any other address must name one interface
(``0.0.0.0`` would publish on every one).  Pure: no locust, no Flask, so the runner may import it.
"""

from __future__ import annotations

import ipaddress

BIND_ENV = "LAB_BIND_ADDR"
MASTER_BIND_ENV = "LAB_MASTER_BIND_ADDR"  # locust's master port, when it differs from BIND_ENV
DEFAULT_BIND = "127.0.0.1"  # docker-compose.yml's default for LAB_BIND_ADDR


def is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def specific_address(bind_addr: str) -> str:
    """``bind_addr`` if it names one interface other machines can use (not 0.0.0.0, not loopback)."""
    try:
        address = ipaddress.ip_address(bind_addr.strip("[]"))
    except ValueError:
        return ""
    return "" if address.is_unspecified or address.is_loopback else str(address)
