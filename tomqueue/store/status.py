"""StatusStore: reads a job's status (``tomqueue.status``) and purges expired history."""

from __future__ import annotations

from typing import Any

from tomqueue.job_status import HistoryFacts, JobRowFacts, JobStatus, derive_state
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor
from tomqueue.store.values import Record

PURGE_BATCH = 1000


class StatusStore:
    """One read per status; the purge deletes a small batch per statement."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def read(self, job_id: int) -> JobStatus | None:
        """The job's status, None if it is unknown or its status has expired."""
        rows = self._executor.read(sql.READ_STATUS, {"id": job_id})
        return status_from(job_id, rows[0]) if rows else None

    def purge_expired(self, limit: int = PURGE_BATCH) -> int:
        """Delete up to ``limit`` expired history rows; how many went."""
        return self._executor.autocommit(sql.PURGE_HISTORY, {"limit": limit}).rowcount


def status_from(job_id: int, record: Record) -> JobStatus | None:
    """The status that ``statements.READ_STATUS``'s row means (``derive_state``'s rule)."""
    row = JobRowFacts(bool(record["failed"]), bool(record["locked"])) if record["in_jobs"] else None
    history = (
        HistoryFacts(record["outcome"], bool(record["expired"])) if record["in_history"] else None
    )
    state = derive_state(row, history)
    if state is None:
        return None
    fields: dict[str, Any] = dict(record["fields"] or {}) if history is not None else {}
    return JobStatus(
        id=job_id,
        state=state,
        value=record["progress_value"],
        total=record["progress_total"],
        fields=fields,
    )
