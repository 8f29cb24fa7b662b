"""AdminStore: what operators (the CLI, user scripts, tests) read and change by hand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from tomqueue.plans import plan_retry
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor
from tomqueue.store.values import RetryResult, snapshot_from, snapshots


class AdminStore:
    """Look at jobs, retry or delete them, and re-announce what waits."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def get(self, job_id: int) -> JobSnapshot | None:
        rows = self._executor.read(sql.GET_JOB, {"id": job_id})
        return snapshot_from(rows[0]) if rows else None

    def list_jobs(self, failed_only: bool = False, limit: int = 100) -> list[JobSnapshot]:
        statement = sql.LIST_FAILED_JOBS if failed_only else sql.LIST_JOBS
        return snapshots(self._executor.read(statement, {"n": limit}))

    def count_jobs(self, failed_only: bool = False) -> int:
        statement = sql.COUNT_FAILED_JOBS if failed_only else sql.COUNT_JOBS
        return int(self._executor.read(statement)[0]["n"])

    def retry(self, job_id: int) -> RetryResult:
        """Make a job pending and due now, with a fresh set of attempts, unless a live worker
        is running it (``tomqueue.plans.plan_retry`` decides; this carries it out)."""
        with self._executor.transaction() as tx:
            found = tx.run(sql.SELECT_FOR_RETRY, {"id": job_id}).records
            if not found:
                return RetryResult(None)
            locked_by = found[0]["locked_by"]
            plan = plan_retry(
                None if locked_by is None else str(locked_by), bool(found[0]["holder_alive"])
            )
            if not plan.reset:
                return RetryResult(None, running_on=plan.running_on)
            params = {"id": job_id, "attempts": plan.attempts, "crashes": plan.crashes}
            return RetryResult(snapshot_from(tx.run(sql.RETRY_JOB, params).records[0]))

    def delete(self, job_id: int) -> bool:
        return self._executor.write(sql.DELETE_JOB, {"id": job_id}).rowcount > 0

    def iter_due_pending(self, batch_size: int = 1000) -> Iterator[list[JobSnapshot]]:
        """Every pending, due, unlocked job in id order, a batch at a time, for ``tomqueue
        republish`` (a job a worker holds needs no news)."""
        last_id = 0
        while True:
            params = {"last": last_id, "n": batch_size}
            rows = snapshots(self._executor.read(sql.DUE_PENDING_PAGE, params))
            if not rows:
                return
            yield rows
            last_id = rows[-1].id

    def mark_republished(self, announced: Sequence[tuple[int, datetime]]) -> None:
        """Mark rows announced now by ``tomqueue republish``, released already or not, but
        only where run_at is still the announced one."""
        if announced:
            params = {"ids": [i for i, _ in announced], "run_ats": [t for _, t in announced]}
            self._executor.write(sql.MARK_RELEASED_AGAIN, params)

    def unrelease_future(self) -> int:
        """Ask the deferred manager to look again at every future job (after a purge)."""
        return self._executor.write(sql.UNRELEASE_FUTURE).rowcount

    def db_now(self) -> datetime:
        value: datetime = self._executor.read(sql.DB_NOW)[0]["now"]
        return value

    def sql_digest(self, job_id: int) -> str | None:
        """The digest as PostgreSQL computes it (tests check it equals Python's)."""
        rows = self._executor.read(sql.SQL_DIGEST, {"id": job_id})
        return None if not rows or rows[0]["digest"] is None else str(rows[0]["digest"])
