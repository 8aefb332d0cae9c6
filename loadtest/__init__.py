"""wsgi-lab load tests."""
