"""Plain values the store takes and returns: what to insert, what a lock or a retry did.

Rows leave the store as ``JobSnapshot`` values built here, never as driver rows or live
ORM objects, so no caller depends on how a statement was run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tomqueue.admission import Admission
from tomqueue.progress import StatusReport
from tomqueue.snapshot import JobSnapshot

Record = Mapping[str, Any]
"""One row as the driver returned it, by column name: only the store modules see these."""


@dataclass(frozen=True)
class NewJob:
    """What enqueue asks the store to write."""

    handler: str
    priority: int
    run_at: datetime | None
    queue: str | None
    # the class name, a space, and the job's unique_key() (None: not unique)
    unique_key: str | None = None
    # the job's serial_key() (None: runs whenever it is due)
    serial_key: str | None = None
    # the enqueuer's trace context (tomqueue.tracing), None when nothing traces
    trace_context: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """What an operator's action on one row did: the row as it was written (for a delete,
    as it was removed), or why not. Neither: there is no such job."""

    row: JobSnapshot | None
    running_on: str | None = None  # a live worker holds the job: nothing was changed
    announce: bool = False  # the row was marked released now: its notification is due


RetryResult = ActionResult


@dataclass(frozen=True)
class Held:
    """A row a bulk action left alone because a live worker runs it."""

    job_id: int
    running_on: str


@dataclass(frozen=True)
class BatchResult:
    """One batch of a bulk action, committed: what changed and what was left alone."""

    done: int
    rows: list[JobSnapshot]  # the rows as written (retry); empty for a delete
    held: list[Held]
    last_id: int | None  # the last id the batch looked at; None when nothing was left


@dataclass(frozen=True)
class StateCounts:
    """How many jobs are in each state (``tomqueue.filters.State``)."""

    queued: int = 0
    scheduled: int = 0
    running: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.scheduled + self.running + self.failed


@dataclass(frozen=True)
class StatsRow:
    """One group of ``statements.STATS``: overall, or one priority, queue or class."""

    group: str  # "total" | "priority" | "queue" | "class"
    key: int | str | None  # the priority, queue (None: the default queue) or class name
    counts: StateCounts
    oldest_queued_run_at: datetime | None
    db_now: datetime


@dataclass(frozen=True)
class HeldRow:
    """A locked row: which lease holds it, and whether that lease lives."""

    job_id: int
    lock_key: int | None
    locked_by: str
    locked_at: datetime
    class_name: str
    queue: str | None
    priority: int
    attempts: int
    alive: bool


@dataclass(frozen=True)
class ThroughputRow:
    """How many jobs ended in one time bucket (from the history table)."""

    bucket: datetime  # the bucket's start
    succeeded: int
    failed: int  # failed for good


@dataclass(frozen=True)
class Lease:
    """A worker lease held now: its advisory-lock key and its database session."""

    key: int
    since: datetime | None
    client_addr: str | None
    # the session's application_name: a worker's lease name ("host pid:N key:K", cut at
    # 63 bytes); None from a worker too old to set it, or from another role's view
    session_name: str | None = None


@dataclass(frozen=True)
class LockResult:
    """What LockJob learnt: the decision, the row as it was, and the database clock."""

    admission: Admission
    row: JobSnapshot | None
    db_now: datetime


DEFAULT_STATUS_TTL = 86400.0


@dataclass(frozen=True)
class Ended:
    """What a statement that ends a job (deletes it after success, fails it for good)
    records in the job's history row beyond the row's own columns: the class name (as
    decoded from the handler), how long the status stays readable, and the run's last
    report (None: keep what the run wrote while it ran)."""

    class_name: str | None = None
    ttl_seconds: float = DEFAULT_STATUS_TTL
    report: StatusReport | None = None


def snapshot_from(record: Record) -> JobSnapshot:
    """The snapshot of a row read with ``statements.COLUMNS`` (extra columns are ignored)."""
    return JobSnapshot(
        id=record["id"],
        priority=record["priority"],
        attempts=record["attempts"],
        handler=record["handler"],
        last_error=record["last_error"],
        run_at=record["run_at"],
        locked_at=record["locked_at"],
        locked_by=record["locked_by"],
        failed_at=record["failed_at"],
        queue=record["queue"],
        created_at=record["created_at"],
        updated_at=record["updated_at"],
        released_at=record["released_at"],
        crashes=record["crashes"],
        lock_key=record["lock_key"],
        unique_key=record["unique_key"],
        serial_key=record["serial_key"],
        parked_on=record["parked_on"],
        trace_context=record["trace_context"],
    )


def snapshots(records: list[Record]) -> list[JobSnapshot]:
    return [snapshot_from(record) for record in records]
