"""Jobs for the demo: a greeting, a report that runs later, and a job that always fails."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import tomqueue


class Greet(tomqueue.Job):
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self) -> None:
        time.sleep(0.05)
        print(f"    [job] hello, {self.name}!", flush=True)


class NightlyReport(tomqueue.Job):
    def __init__(self, title: str) -> None:
        self.title = title

    def perform(self) -> None:
        built = datetime.now(UTC)
        print(f"    [job] report {self.title!r} built at {built:%H:%M:%S} UTC", flush=True)


class ChargeCard(tomqueue.Job):
    """Always declines, to show retries and a failed row kept for a person."""

    max_attempts: ClassVar[int] = 3

    def __init__(self, card: str) -> None:
        self.card = card

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(seconds=1)

    def perform(self) -> None:
        raise RuntimeError(f"card {self.card} declined")
