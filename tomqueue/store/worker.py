"""WorkerStore: the worker's statements per job: lock, then delete or record the failure.

The success path is two autocommit statements on the slot thread's own connection
(``Executor.hot_rows``, ``hot_count``), the delete also writing the job's history row;
anything unusual takes a short transaction. No
transaction stays open while a job runs: the lock is the row's locked_by/lock_key, backed
by the worker's live advisory lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tomqueue.admission import Admission, admit
from tomqueue.error_text import storable
from tomqueue.plans import plan_failure
from tomqueue.progress import StatusReport
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor, Params
from tomqueue.store.values import DEFAULT_STATUS_TTL, Ended, LockResult, snapshot_from
from tomqueue.worker.group_call import GroupCall


@dataclass(frozen=True)
class LockRequest:
    job_id: int
    digest: str
    locked_by: str
    lease_key: int


@dataclass(frozen=True)
class DeleteRequest:
    job_id: int
    locked_by: str
    ended: Ended


NOTHING_TO_ADD = Ended()


class WorkerStore:
    """Locks a row for one attempt and writes what the attempt came to.

    The per-job lock and delete are grouped across the worker's slots (GroupCall): slots
    asking while a statement is in flight share the next one, so a busy worker sends one
    UPDATE and one DELETE for several jobs, and an idle one a statement per job as before.
    Each slot still gets its own answer, and still deletes before it acks.
    """

    def __init__(self, executor: Executor, max_batch: int = 64) -> None:
        self._executor = executor
        self._lock_group: GroupCall[LockRequest, LockResult | None] = GroupCall(
            self._lock_many, max_batch
        )
        self._delete_group: GroupCall[DeleteRequest, bool] = GroupCall(self._delete_many, max_batch)

    def batching(self) -> dict[str, tuple[int, int]]:
        """(statements, jobs) for the grouped lock and delete so far: how much grouping saved."""
        return {
            "lock": (self._lock_group.batches, self._lock_group.requests),
            "delete": (self._delete_group.batches, self._delete_group.requests),
        }

    def lock_for_run(self, job_id: int, digest: str, locked_by: str, lease_key: int) -> LockResult:
        """Re-check the row, decide, and lock it if it may run.

        The common case (due, unlocked, not failed, digest matching) is one conditional
        UPDATE in autocommit. Anything else falls back to reading the row FOR UPDATE and
        deciding with ``admit``. ``locked_by`` names this attempt, so a retry after a lost
        reply finds its own lock.
        """
        locked = self._lock_group(LockRequest(job_id, digest, locked_by, lease_key))
        if locked is not None:
            return locked
        return self._lock_carefully(job_id, digest, locked_by, lease_key)

    def _lock_many(self, requests: Sequence[LockRequest]) -> list[LockResult | None]:
        """The fast lock for a batch: a result for each request it locked, else None."""
        if len(requests) == 1:
            (one,) = requests
            params: Params = {
                "id": one.job_id,
                "digest": one.digest,
                "by": one.locked_by,
                "key": one.lease_key,
            }
            records = self._executor.hot_rows(sql.LOCK_FAST, params)
        else:
            params = {
                "ids": [r.job_id for r in requests],
                "digests": [r.digest for r in requests],
                "holders": [r.locked_by for r in requests],
                "lease_keys": [r.lease_key for r in requests],
            }
            records = self._executor.hot_rows(sql.LOCK_MANY, params)
        locked = {
            (rec["id"], rec["locked_by"]): LockResult(
                Admission.RUN, snapshot_from(rec), rec["db_now"]
            )
            for rec in records
        }
        return [locked.get((r.job_id, r.locked_by)) for r in requests]

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

    def delete_succeeded(self, job_id: int, locked_by: str, ended: Ended | None = None) -> bool:
        """Delete a finished job, if this attempt still holds it, and record its history
        row (outcome 'succeeded') in the same statement."""
        return self._delete_group(DeleteRequest(job_id, locked_by, ended or NOTHING_TO_ADD))

    def _delete_many(self, requests: Sequence[DeleteRequest]) -> list[bool]:
        if len(requests) == 1:
            (one,) = requests
            report = one.ended.report
            params: Params = {
                "id": one.job_id,
                "by": one.locked_by,
                "class": one.ended.class_name,
                "ttl": one.ended.ttl_seconds,
                "value": report.value if report else None,
                "total": report.total if report else None,
                "fields": report.fields_json() if report else None,
            }
            return [self._executor.hot_count(sql.DELETE_HELD, params) > 0]
        reports = [r.ended.report for r in requests]
        params = {
            "ids": [r.job_id for r in requests],
            "holders": [r.locked_by for r in requests],
            "classes": [r.ended.class_name for r in requests],
            "ttls": [r.ended.ttl_seconds for r in requests],
            "pvalues": [rep.value if rep else None for rep in reports],
            "ptotals": [rep.total if rep else None for rep in reports],
            "pfields": [rep.fields_json() if rep else None for rep in reports],
        }
        deleted = {
            (rec["id"], rec["locked_by"])
            for rec in self._executor.hot_rows(sql.DELETE_MANY_HELD, params)
        }
        return [(r.job_id, r.locked_by) in deleted for r in requests]

    def record_failure(
        self,
        job_id: int,
        locked_by: str,
        attempts: int,
        last_error: str,
        run_at: datetime | None,
        ended: Ended | None = None,
    ) -> JobSnapshot | None:
        """Unlock after a failed attempt: reschedule at ``run_at``, or fail for good if None
        (the rule is ``tomqueue.plans.plan_failure``; this only writes it). A failure for
        good records the job's history row (outcome 'failed') in the same statement."""
        plan = plan_failure(attempts, last_error, run_at)
        ended = ended or NOTHING_TO_ADD
        params = {
            "id": job_id,
            "by": locked_by,
            "attempts": plan.attempts,
            "error": plan.last_error,
            "run_at": plan.run_at,
            "fail_now": plan.fail_now,
            "class": ended.class_name,
            "ttl": ended.ttl_seconds,
        }
        rows = self._executor.hot_text(sql.RECORD_FAILURE, params).records
        return snapshot_from(rows[0]) if rows else None

    def fail_held(
        self, job_id: int, locked_by: str, last_error: str, ended: Ended | None = None
    ) -> JobSnapshot | None:
        """Fail a job this attempt holds for good, without running it (unknown class, a
        bad handler, poison, attempts used up by crashes): no retries, kept for a person;
        its history row says 'failed'."""
        ended = ended or NOTHING_TO_ADD
        params = {
            "id": job_id,
            "by": locked_by,
            "error": storable(last_error),
            "class": ended.class_name,
            "ttl": ended.ttl_seconds,
        }
        rows = self._executor.write(sql.FAIL_HELD, params).records
        return snapshot_from(rows[0]) if rows else None

    def hand_back(self, job_id: int, locked_by: str) -> bool:
        """Unlock a row this attempt holds without running it and leave it unannounced, so
        that it is announced again to the workers of its own named queue."""
        params = {"id": job_id, "by": locked_by}
        return self._executor.write(sql.HAND_BACK, params).rowcount > 0

    def named_queues(self) -> list[str]:
        """Every named queue some job is in (waiting, running or failed), by name; read with
        no BEGIN/COMMIT, as it runs at every sweep of every worker serving every queue."""
        rows = self._executor.autocommit(sql.NAMED_QUEUES, {}).records
        return [str(row["name"]) for row in rows]

    def write_status(
        self,
        job_id: int,
        locked_by: str,
        class_name: str,
        report: StatusReport,
        keep_seconds: float = DEFAULT_STATUS_TTL,
    ) -> bool:
        """Upsert a running job's report into its history row, if this attempt still holds
        the job (a pooled connection: the job's thread is not a slot's hot one)."""
        params = {
            "id": job_id,
            "by": locked_by,
            "class": class_name,
            "value": report.value,
            "total": report.total,
            "fields": report.fields_json(),
            "keep": keep_seconds,
        }
        return self._executor.autocommit(sql.WRITE_STATUS, params).rowcount > 0
