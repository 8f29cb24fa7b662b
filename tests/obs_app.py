"""An app module for the observability tests (``--app tests.obs_app``): job classes with
every ending, and an exception reporter that records each call to ``test_runs``.

``TQ_CONFIGURE_REPORTER=1`` installs the reporter with ``tomqueue.configure`` at import,
as an application's own module would; ``TQ_REPORT_EVERY=1`` adds
``report_every_attempt=True``; ``TQ_REPORTER_RAISES=1`` makes the reporter raise after
recording (the job's bookkeeping must not notice).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from typing import ClassVar

import tomqueue
from tests.jobs import record

REPORTS = "reports"  # the test_runs label of every reporter call


def record_report(exc: BaseException, **kwargs: object) -> None:
    """The exception reporter: one test_runs row per call, its arguments as JSON."""
    detail = {"exc_type": type(exc).__name__, "exc": str(exc).splitlines()[0], **kwargs}
    record(REPORTS, "report", json.dumps(detail, sort_keys=True))
    if os.environ.get("TQ_REPORTER_RAISES") == "1":
        raise RuntimeError("the reporter itself is broken")


class Succeeds(tomqueue.Job):
    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        record(self.label)


class FailsTwice(tomqueue.Job):
    """Raises on each of its two attempts: one retry, then failed for good."""

    max_attempts: ClassVar[int] = 2

    def __init__(self, label: str) -> None:
        self.label = label

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(milliseconds=100)

    def perform(self) -> None:
        record(self.label)
        raise ValueError(f"{self.label} is broken")


class FailsOnce(tomqueue.Job):
    """Fails for good on its first and only attempt."""

    max_attempts: ClassVar[int] = 1

    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        record(self.label)
        raise KeyError(self.label)


class Overruns(tomqueue.Job):
    """Runs past its max_run_time in Python code, so JobTimeout stops it."""

    max_run_time: ClassVar[float] = 0.5
    max_attempts: ClassVar[int] = 1

    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        record(self.label, "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.02)


if os.environ.get("TQ_CONFIGURE_REPORTER") == "1":
    tomqueue.configure(
        exception_reporter=record_report,
        report_every_attempt=os.environ.get("TQ_REPORT_EVERY") == "1",
    )
