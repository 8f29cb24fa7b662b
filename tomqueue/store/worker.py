"""WorkerStore: the worker's statements per job: lock, then delete or record the failure.

The success path is two autocommit statements on the slot thread's own connection
(``Executor.hot_rows``, ``hot_count``); anything unusual takes a short transaction. No
transaction stays open while a job runs: the lock is the row's locked_by/lock_key, backed
by the worker's live advisory lock.
"""

from __future__ import annotations

from datetime import datetime

from tomqueue.admission import Admission, admit
from tomqueue.error_text import storable
from tomqueue.plans import plan_failure
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor
from tomqueue.store.values import LockResult, snapshot_from


class WorkerStore:
    """Locks a row for one attempt and writes what the attempt came to."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def lock_for_run(self, job_id: int, digest: str, locked_by: str, lease_key: int) -> LockResult:
        """Re-check the row, decide, and lock it if it may run.

        The common case (due, unlocked, not failed, digest matching) is one conditional
        UPDATE in autocommit. Anything else falls back to reading the row FOR UPDATE and
        deciding with ``admit``. ``locked_by`` names this attempt, so a retry after a lost
        reply finds its own lock.
        """
        locked = self._executor.hot_rows(
            sql.LOCK_FAST, {"id": job_id, "digest": digest, "by": locked_by, "key": lease_key}
        )
        if locked:
            return LockResult(Admission.RUN, snapshot_from(locked[0]), locked[0]["db_now"])
        return self._lock_carefully(job_id, digest, locked_by, lease_key)

    def _lock_carefully(
        self, job_id: int, digest: str, locked_by: str, lease_key: int
    ) -> LockResult:
        with self._executor.transaction() as tx:
            found = tx.run(sql.SELECT_FOR_LOCK, {"id": job_id}).records
            if not found:
                db_now: datetime = tx.run(sql.DB_NOW).records[0]["now"]
                return LockResult(Admission.DROP_MISSING, None, db_now)
            row = snapshot_from(found[0])
            db_now = found[0]["db_now"]
            holder_alive = bool(found[0]["holder_alive"])
            decision = admit(row, digest, db_now, holder_alive, own_lock=locked_by)
            if decision is Admission.DEFER:
                tx.run(sql.UNRELEASE_ONE, {"id": job_id})
            elif decision is Admission.RUN:
                params = {"id": job_id, "by": locked_by, "key": lease_key}
                locked = tx.run(sql.LOCK_ROW, params).records[0]
                return LockResult(decision, snapshot_from(locked), db_now)
            return LockResult(decision, row, db_now)

    def delete_succeeded(self, job_id: int, locked_by: str) -> bool:
        """Delete a finished job, if this attempt still holds it."""
        return self._executor.hot_count(sql.DELETE_HELD, {"id": job_id, "by": locked_by}) > 0

    def record_failure(
        self,
        job_id: int,
        locked_by: str,
        attempts: int,
        last_error: str,
        run_at: datetime | None,
    ) -> JobSnapshot | None:
        """Unlock after a failed attempt: reschedule at ``run_at``, or fail for good if None
        (the rule is ``tomqueue.plans.plan_failure``; this only writes it)."""
        plan = plan_failure(attempts, last_error, run_at)
        params = {
            "id": job_id,
            "by": locked_by,
            "attempts": plan.attempts,
            "error": plan.last_error,
            "run_at": plan.run_at,
            "fail_now": plan.fail_now,
        }
        rows = self._executor.hot_text(sql.RECORD_FAILURE, params).records
        return snapshot_from(rows[0]) if rows else None

    def fail_held(self, job_id: int, locked_by: str, last_error: str) -> JobSnapshot | None:
        """Fail a job this attempt holds for good, without running it (unknown class, a
        bad handler, poison, attempts used up by crashes): no retries, kept for a person."""
        params = {"id": job_id, "by": locked_by, "error": storable(last_error)}
        rows = self._executor.write(sql.FAIL_HELD, params).records
        return snapshot_from(rows[0]) if rows else None
