"""NameJob: ten seconds of work, then a greeting, recorded once.

It lives in the app's ``tasks`` module, which ``manage.py tomqueue_worker`` imports at start
(Django's task autodiscovery): importing it registers the class with tomqueue, so the
worker may run it. A row naming any class the worker did not import is never run.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import ClassVar

import tomqueue

log = logging.getLogger(__name__)

STEPS = 10  # seconds of work, one progress step each


class NameJob(tomqueue.Job):
    max_run_time: ClassVar[float] = 60

    def __init__(self, name: str, token: str | None = None) -> None:
        self.name = name
        # made once, when the job is built in the web process: a run after a crash has
        # the same token, so the greeting is written at most once
        self.token = token or uuid.uuid4().hex

    def perform(self) -> None:
        from names.models import Greeting

        self.status["name"] = self.name
        self.progress.total = STEPS
        for _ in range(STEPS):
            time.sleep(1)
            self.progress.increment()
        message = f"Hello, {self.name}! Your name was worked on for {STEPS} seconds."
        greeting, created = Greeting.objects.get_or_create(
            token=self.token, defaults={"name": self.name, "message": message}
        )
        self.status["message"] = greeting.message
        if created:
            log.info("NameJob succeeded: %s", greeting.message)
        else:
            log.info("NameJob ran again after a crash; its greeting was already recorded")
