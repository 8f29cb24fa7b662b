"""JobSnapshot: a plain, immutable copy of one jobs-table row (never a live ORM object)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from tomqueue.handler import handler_class_name


@dataclass(frozen=True)
class JobSnapshot:
    """One row of ``tomqueue_jobs`` as it was read."""

    id: int
    priority: int
    attempts: int
    handler: str
    last_error: str | None
    run_at: datetime
    locked_at: datetime | None
    locked_by: str | None
    failed_at: datetime | None
    queue: str | None
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None = None
    crashes: int = 0
    lock_key: int | None = None
    # "<class name> <key>" for a unique job (tomqueue.Job.unique_key), else None
    unique_key: str | None = None
    # what the job's serial_key() returned (tomqueue.Job.serial_key), else None
    serial_key: str | None = None
    # the gate the job waits at for a slot or its turn (tomqueue.worker.gates), else None
    parked_on: str | None = None
    # W3C trace context of the enqueue that wrote the row, as JSON (tomqueue.tracing)
    trace_context: str | None = None

    @property
    def class_name(self) -> str:
        return handler_class_name(self.handler)

    @property
    def digest(self) -> str:
        return row_digest(self.id, self.handler, self.run_at, self.attempts, self.priority)

    @property
    def is_failed(self) -> bool:
        return self.failed_at is not None


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def row_digest(job_id: int, handler: str, run_at: datetime, attempts: int, priority: int) -> str:
    """Fingerprint of what a notification promises; any reschedule or edit changes it.

    A notification whose digest no longer matches its row is stale and is dropped, so
    republishing, duplicate releases and hand edits can never run an outdated version.
    PostgreSQL computes the same value with ``tomqueue.store.statements.DIGEST``: change
    both or neither (tests/integration/test_store_statements.py compares them).
    """
    text = "\x1f".join((str(job_id), handler, _utc_text(run_at), str(attempts), str(priority)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
