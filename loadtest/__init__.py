"""wsgi-lab's load tests and the comparison of servers, laid out by the process each module runs in.

The folder a module sits in says which process loads it and so what it may import; the map is
docs/architecture.md, the rules are the import-linter contracts in pyproject.toml (``make lint``).
"""
