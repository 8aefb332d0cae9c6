"""``LAB_HOSTS`` and ``--hosts``: a list of named servers, ``name=url,name=url``."""

from __future__ import annotations


def parse_hosts(spec: str) -> dict[str, str]:
    """``"a=http://x:8000,b=http://y:8000"`` -> ``{"a": "http://x:8000", ...}``.

    Raises ValueError naming the bad entry, so every caller can turn it into
    a one-line error.
    """
    hosts: dict[str, str] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        if not sep or not name or not url.startswith(("http://", "https://")) or url[-3:] == "://":
            raise ValueError(f"bad host entry {item!r}: expected name=http://host:port")
        if name in hosts:
            raise ValueError(f"host name {name!r} appears twice")
        hosts[name] = url
    return hosts
