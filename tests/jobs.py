"""Job classes used by the tests: each run is recorded in the ``test_runs`` table.

Worker subprocesses import this module with ``--app tests.jobs``.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta
from typing import ClassVar

import psycopg

import tomqueue
from tomqueue.default_app import current_settings


def _dsn() -> str:
    return current_settings().database_url.replace("postgresql+psycopg://", "postgresql://")


def record(label: str, event: str = "perform", detail: str = "") -> None:
    """Write one row to test_runs, committed at once (survives a SIGKILL right after)."""
    with psycopg.connect(_dsn(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO test_runs (label, event, detail, pid) VALUES (%s, %s, %s, %s)",
            (label, event, detail, os.getpid()),
        )


class Record(tomqueue.Job):
    """Succeeds, leaving a trace."""

    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        record(self.label)


class StartEnd(tomqueue.Job):
    """Records when it starts and when it ends, to catch two runs of one job at once."""

    def __init__(self, label: str, seconds: float = 0.0) -> None:
        self.label = label
        self.seconds = seconds

    def perform(self) -> None:
        record(self.label, "start")
        time.sleep(self.seconds)
        record(self.label, "end")


class Hooked(tomqueue.Job):
    """Records every hook, to check Delayed::Job's order; fails while ``fail_times`` > attempts."""

    max_attempts: ClassVar[int] = 3

    def __init__(self, label: str, fail: bool = False) -> None:
        self.label = label
        self.fail = fail

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(milliseconds=100)

    def before(self) -> None:
        record(self.label, "before")

    def perform(self) -> None:
        record(self.label, "perform")
        if self.fail:
            raise RuntimeError(f"{self.label} failed on purpose")

    def success(self) -> None:
        record(self.label, "success")

    def error(self, exc: BaseException) -> None:
        record(self.label, "error", type(exc).__name__)

    def after(self) -> None:
        record(self.label, "after")

    def failure(self) -> None:
        record(self.label, "failure")


class FlakyUntil(tomqueue.Job):
    """Fails until it has been tried ``succeed_on`` times, then succeeds."""

    max_attempts: ClassVar[int] = 5

    def __init__(self, label: str, succeed_on: int) -> None:
        self.label = label
        self.succeed_on = succeed_on

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(milliseconds=200)

    def perform(self) -> None:
        with psycopg.connect(_dsn(), autocommit=True) as conn:
            tries = conn.execute(
                "SELECT count(*) FROM test_runs WHERE label = %s", (self.label,)
            ).fetchone()
        record(self.label, "perform")
        if tries is not None and tries[0] + 1 < self.succeed_on:
            raise ValueError(f"{self.label}: not yet (try {tries[0] + 1})")


class AlwaysFails(tomqueue.Job):
    max_attempts: ClassVar[int] = 2

    def __init__(self, label: str) -> None:
        self.label = label

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(milliseconds=100)

    def perform(self) -> None:
        record(self.label)
        raise ValueError(f"{self.label} is broken")


class Sleepy(tomqueue.Job):
    """Sleeps in time.sleep (a blocking C call), then records that it woke up."""

    max_run_time: ClassVar[float] = 1.0
    max_attempts: ClassVar[int] = 1

    def __init__(self, label: str, seconds: float) -> None:
        self.label = label
        self.seconds = seconds

    def perform(self) -> None:
        record(self.label, "start")
        time.sleep(self.seconds)
        record(self.label, "woke")


class Slow(tomqueue.Job):
    """Records start, sleeps, records end: for SIGKILL-mid-job and ordering tests."""

    def __init__(self, label: str, seconds: float) -> None:
        self.label = label
        self.seconds = seconds

    def perform(self) -> None:
        record(self.label, "start")
        time.sleep(self.seconds)
        record(self.label, "end")


class KillsItsWorker(tomqueue.Job):
    """Poison: takes its whole worker process down with it."""

    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        import signal

        record(self.label)
        os.kill(os.getpid(), signal.SIGKILL)

    def failure(self) -> None:
        record(self.label, "failure")


class CrashesOnLastAttempt(AlwaysFails):
    """Fails once normally, then kills its worker on its second and last attempt."""

    def perform(self) -> None:
        import signal

        with psycopg.connect(_dsn(), autocommit=True) as conn:
            tries = conn.execute(
                "SELECT count(*) FROM test_runs WHERE label = %s AND event = 'perform'",
                (self.label,),
            ).fetchone()
        record(self.label)
        if tries is not None and tries[0] == 0:
            raise ValueError("first attempt fails normally")
        os.kill(os.getpid(), signal.SIGKILL)

    def failure(self) -> None:
        record(self.label, "failure")


# -- status and progress (tests/integration/test_status.py) ------------------------------

GATES: dict[str, threading.Event] = {}
_gates_lock = threading.Lock()


def gate(label: str) -> threading.Event:
    """An event a Reporting job of this label waits on (in-process workers only)."""
    with _gates_lock:
        return GATES.setdefault(label, threading.Event())


class Reporting(tomqueue.Job):
    """Reports progress and a field, waits for its gate, reports again, then ends."""

    max_attempts: ClassVar[int] = 1

    def __init__(self, label: str, total: int = 10, steps: int = 3, fail: bool = False) -> None:
        self.label = label
        self.total = total
        self.steps = steps
        self.fail = fail

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(hours=1)

    def perform(self) -> None:
        self.progress.total = self.total
        for _ in range(self.steps):
            self.progress.increment()
        self.status["step"] = "waiting"
        if not gate(self.label).wait(30):
            raise TimeoutError(f"{self.label}: nobody opened the gate")
        self.status.update(step="done", rows=self.steps)
        self.progress.increment()  # throttled: only the end writes it
        if self.fail:
            raise RuntimeError(f"{self.label} fails on purpose")


class ReportingRetried(Reporting):
    """As Reporting, but a failure is retried an hour later."""

    max_attempts: ClassVar[int] = 3


class ShortLived(tomqueue.Job):
    """Succeeds with a field; its status is kept for one second only."""

    status_ttl: ClassVar[float] = 1.0

    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        self.status["label"] = self.label


class Ticker(tomqueue.Job):
    """Increments its progress every millisecond for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def perform(self) -> None:
        deadline = time.monotonic() + self.seconds
        self.progress.total = int(self.seconds * 1000)
        while time.monotonic() < deadline:
            self.progress.increment()
            time.sleep(0.001)


class Quiet(tomqueue.Job):
    """Does nothing with its state, whatever it holds."""

    def __init__(self, data: object) -> None:
        self.data = data

    def perform(self) -> None:
        pass


class Billing(Record):
    """A Record in the named queue ``billing`` (its class attribute)."""

    queue_name = "billing"


class UniqueRefresh(tomqueue.Job):
    """Unique per account; records its run (and sleeps, to be caught running)."""

    def __init__(self, account: int, seconds: float = 0.0, fail: bool = False) -> None:
        self.account = account
        self.seconds = seconds
        self.fail = fail

    def unique_key(self) -> str | None:
        return f"account:{self.account}"

    def perform(self) -> None:
        record(f"refresh{self.account}", "start")
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("refresh failed on purpose")
        record(f"refresh{self.account}")

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(hours=1)  # waits for its retry, to be seen waiting


class Limited(tomqueue.Job):
    """At most two run at once across the fleet; records its start and end (detail: tag)."""

    concurrency_limit: ClassVar[int | None] = 2

    def __init__(self, label: str, tag: str, seconds: float = 0.0) -> None:
        self.label = label
        self.tag = tag
        self.seconds = seconds

    def perform(self) -> None:
        record(self.label, "start", self.tag)
        time.sleep(self.seconds)
        record(self.label, "end", self.tag)


class InOrder(tomqueue.Job):
    """One of a serial key's jobs: records its start and end (detail: its number); fails
    its first ``fail_times`` attempts."""

    max_attempts: ClassVar[int] = 3

    def __init__(self, key: str, number: int, fail_times: int = 0, seconds: float = 0.0) -> None:
        self.key = key
        self.number = number
        self.fail_times = fail_times
        self.seconds = seconds

    def serial_key(self) -> str | None:
        return self.key

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(milliseconds=300)

    def perform(self) -> None:
        record(self.key, "start", str(self.number))
        time.sleep(self.seconds)
        with psycopg.connect(_dsn(), autocommit=True) as conn:
            tries = conn.execute(
                "SELECT count(*) FROM test_runs WHERE label = %s AND event = 'start' "
                "AND detail = %s",
                (self.key, str(self.number)),
            ).fetchone()
        if tries is not None and tries[0] <= self.fail_times:
            record(self.key, "fail", str(self.number))
            raise RuntimeError(f"{self.key} #{self.number} fails on purpose (try {tries[0]})")
        record(self.key, "end", str(self.number))


class Roomy(Record):
    """A class with a limit that a test never reaches."""

    concurrency_limit: ClassVar[int | None] = 1000
