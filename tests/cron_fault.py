"""A cron class that stops dead while its manager builds it, inside the transaction that
claimed the fire time: with ``TQ_PAUSE_AT=cron_build`` the manager records a "pause" row
and waits there until the test SIGKILLs it. Imported only by the processes a fault test
starts (``tomqueue-deferred --app tests.cron_fault``)."""

from __future__ import annotations

import os

import tomqueue
from tests.fault_app import pause_here


class PausesWhileClaimed(tomqueue.Job):
    cron = "* * * * * */2"

    def __init__(self) -> None:
        if os.environ.get("TQ_PAUSE_AT") == "cron_build":
            pause_here("cron_build")

    def perform(self) -> None:
        pass
