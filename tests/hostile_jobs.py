"""Job classes whose user code misbehaves in every way a job can: each must cost only its
own attempt, recorded with the true error, and never leave its row locked.

Worker subprocesses import this module with ``--app tests.hostile_jobs``.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from datetime import datetime, timedelta
from typing import ClassVar

import psycopg

import tomqueue
from tests.jobs import _dsn, record


class _OneTry(tomqueue.Job):
    max_attempts: ClassVar[int] = 2

    def __init__(self, label: str) -> None:
        self.label = label

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(hours=1)  # stays waiting: the test reads its row


class RaisesSystemExit(_OneTry):
    def perform(self) -> None:
        record(self.label)
        sys.exit(3)


class RaisesKeyboardInterrupt(_OneTry):
    def perform(self) -> None:
        record(self.label)
        raise KeyboardInterrupt


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("even the message is broken")


class RaisesUnprintable(_OneTry):
    def perform(self) -> None:
        record(self.label)
        raise BrokenStr()


class RaisesUnstorable(_OneTry):
    """A message PostgreSQL text cannot hold: a NUL byte and a lone surrogate."""

    def perform(self) -> None:
        record(self.label)
        raise ValueError("bad \x00 byte and \udc80 surrogate " + "x" * 200_000)


class ErrorHookRaises(_OneTry):
    def perform(self) -> None:
        record(self.label)
        raise ValueError("the real error")

    def error(self, exc: BaseException) -> None:
        raise SystemExit("error() hook exits")


class RescheduleRaises(_OneTry):
    def perform(self) -> None:
        record(self.label)
        raise ValueError("the real error")

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        raise RuntimeError("reschedule_at is broken")


class RescheduleReturnsJunk(_OneTry):
    def perform(self) -> None:
        record(self.label)
        raise ValueError("the real error")

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return "tomorrow"  # type: ignore[return-value]


class AfterHookRaises(_OneTry):
    def perform(self) -> None:
        record(self.label)

    def after(self) -> None:
        raise KeyboardInterrupt


class FailureHookRaises(tomqueue.Job):
    max_attempts: ClassVar[int] = 1

    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        record(self.label)
        raise ValueError("fails for good")

    def failure(self) -> None:
        record(self.label, "failure")
        raise SystemExit("failure() hook exits")


class BlockedInC(tomqueue.Job):
    """Blocks in a socket read (C code, deaf to JobTimeout) on its first run only."""

    max_run_time: ClassVar[float] = 1.0

    def __init__(self, label: str, seconds: float) -> None:
        self.label = label
        self.seconds = seconds

    def perform(self) -> None:

        from tests.conftest import libpq  # noqa: F401  (tests package on the path)

        with psycopg.connect(_dsn(), autocommit=True) as conn:
            starts = conn.execute(
                "SELECT count(*) FROM test_runs WHERE label = %s AND event = 'start'",
                (self.label,),
            ).fetchone()
        record(self.label, "start")
        if starts is not None and starts[0] == 0:
            left, right = socket.socketpair()
            left.settimeout(self.seconds)  # a blocking C call nobody can interrupt
            with contextlib.suppress(TimeoutError):
                left.recv(1)
            record(self.label, "unblocked")
            left.close()
            right.close()
        record(self.label, "end")
