"""Cron job classes for the cron tests, imported only by the processes those tests start
(``tomqueue-deferred --app tests.cron_jobs``): a class with a ``cron`` imported into the
test process would be fired by every in-process deferred manager of every test."""

from __future__ import annotations

import tomqueue


class EveryTwoSeconds(tomqueue.Job):
    """Fires every two seconds (a sixth, seconds field, as croniter reads it)."""

    cron = "* * * * * */2"

    def perform(self) -> None:
        pass


class Nightly(tomqueue.Job):
    """Half past one every night in London, daylight saving and all."""

    cron = "30 1 * * *"
    cron_timezone = "Europe/London"

    def perform(self) -> None:
        pass
