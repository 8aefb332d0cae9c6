"""Locust's own FastHttpUser with nothing of ours: the reference of ``make generator-ceiling``.

No recorder, no request names, no options: what one locust process costs per request
before wsgi-lab adds anything (``locust -f loadtest/generator/bare.py BareUser``).
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task


class BareUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def hello(self) -> None:
        self.client.get("/")
