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


@dataclass(frozen=True)
class RetryResult:
    """What ``retry`` did: the row made pending, or why not."""

    row: JobSnapshot | None
    running_on: str | None = None  # a live worker holds the job: nothing was changed


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
    )


def snapshots(records: list[Record]) -> list[JobSnapshot]:
    return [snapshot_from(record) for record in records]
