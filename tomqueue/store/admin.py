"""AdminStore: what operators (``tomqueue.admin``, the CLI, tests) change by hand.

Each action locks its row (or a batch of rows) FOR UPDATE, asks ``tomqueue.plans`` what
to do given the holder's liveness, and carries the plan out in the same transaction, so
no worker can lock the row between the decision and the write. What operators read
(pages, counts, stats, leases) is in ``tomqueue.store.overview``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from tomqueue.filters import Filter, filter_params
from tomqueue.plans import (
    PriorityRelease,
    plan_delete,
    plan_priority,
    plan_reschedule,
    plan_retry,
)
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor, Transaction
from tomqueue.store.values import (
    ActionResult,
    BatchResult,
    Held,
    Record,
    RetryResult,
    snapshot_from,
    snapshots,
)


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
            found = _lock_row(tx, job_id)
            if found is None:
                return RetryResult(None)
            plan = plan_retry(_holder(found), bool(found["holder_alive"]))
            if not plan.reset:
                return RetryResult(None, running_on=plan.running_on)
            params = {"id": job_id, "attempts": plan.attempts, "crashes": plan.crashes}
            row = snapshot_from(tx.run(sql.RETRY_JOB, params).records[0])
            return RetryResult(row, announce=True)

    def delete(self, job_id: int) -> bool:
        """Delete a row whatever holds it (tests and hand repairs; operators use
        ``delete_job``, which leaves a running job alone)."""
        return self._executor.write(sql.DELETE_JOB, {"id": job_id}).rowcount > 0

    def delete_job(self, job_id: int) -> ActionResult:
        """Delete a job unless a live worker is running it (``plans.plan_delete``)."""
        with self._executor.transaction() as tx:
            found = _lock_row(tx, job_id)
            if found is None:
                return ActionResult(None)
            plan = plan_delete(_holder(found), bool(found["holder_alive"]))
            if not plan.delete:
                return ActionResult(None, running_on=plan.running_on)
            return ActionResult(snapshot_from(tx.run(sql.DELETE_ONE, {"id": job_id}).records[0]))

    def reschedule(self, job_id: int, at: datetime | timedelta) -> ActionResult:
        """Move a job to ``at`` (or after a delay from the database's clock) unless a live
        worker is running it (``plans.plan_reschedule``). A failed job comes back pending."""
        with self._executor.transaction() as tx:
            found = _lock_row(tx, job_id)
            if found is None:
                return ActionResult(None)
            plan = plan_reschedule(
                _holder(found),
                bool(found["holder_alive"]),
                failed=found["failed_at"] is not None,
                at=at,
                db_now=found["db_now"],
            )
            if not plan.apply:
                return ActionResult(None, running_on=plan.running_on)
            params = {
                "id": job_id,
                "run_at": plan.run_at,
                "due": plan.due,
                "fresh": plan.fresh_attempts,
            }
            row = snapshot_from(tx.run(sql.RESCHEDULE_JOB, params).records[0])
            return ActionResult(row, announce=plan.due)

    def change_priority(self, job_id: int, priority: int) -> ActionResult:
        """Give a job another priority (``plans.plan_priority`` says how it is announced
        again); a running job keeps running, and its next try has the new priority."""
        with self._executor.transaction() as tx:
            found = _lock_row(tx, job_id)
            if found is None:
                return ActionResult(None)
            release = plan_priority(
                _holder(found),
                failed=found["failed_at"] is not None,
                due=found["run_at"] <= found["db_now"],
            )
            params = {"id": job_id, "priority": priority, "release": release.value}
            row = snapshot_from(tx.run(sql.CHANGE_PRIORITY, params).records[0])
            return ActionResult(row, announce=release is PriorityRelease.ANNOUNCE)

    # -- bulk, by filter -------------------------------------------------------------------

    def max_id(self) -> int:
        """The highest id now: a bulk action acts on the jobs that exist when it starts."""
        return int(self._executor.read(sql.MAX_JOB_ID)[0]["n"])

    def retry_batch(self, where: Filter, after: int, upto: int, size: int) -> BatchResult:
        """Retry the next ``size`` jobs matching ``where`` with ids in (after, upto], in one
        transaction, leaving any a live worker runs; their rows come back for announcing."""
        with self._executor.transaction() as tx:
            found = _lock_batch(tx, where, after, upto, size)
            go, held = _split(
                found, lambda r: plan_retry(_holder(r), bool(r["holder_alive"])).reset
            )
            plan = plan_retry(None, False)
            rows: list[JobSnapshot] = []
            if go:
                params = {"ids": go, "attempts": plan.attempts, "crashes": plan.crashes}
                rows = sorted(snapshots(tx.run(sql.RETRY_JOBS, params).records), key=_id)
            return BatchResult(len(rows), rows, held, found[-1]["id"] if found else None)

    def delete_batch(self, where: Filter, after: int, upto: int, size: int) -> BatchResult:
        """Delete the next ``size`` jobs matching ``where`` with ids in (after, upto], in one
        transaction, leaving any a live worker runs."""
        with self._executor.transaction() as tx:
            found = _lock_batch(tx, where, after, upto, size)
            go, held = _split(
                found, lambda r: plan_delete(_holder(r), bool(r["holder_alive"])).delete
            )
            done = len(tx.run(sql.DELETE_JOBS, {"ids": go}).records) if go else 0
            return BatchResult(done, [], held, found[-1]["id"] if found else None)

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


def _lock_row(tx: Transaction, job_id: int) -> Record | None:
    found = tx.run(sql.SELECT_FOR_ACTION, {"id": job_id}).records
    return found[0] if found else None


def _holder(found: Record) -> str | None:
    locked_by = found["locked_by"]
    return None if locked_by is None else str(locked_by)


def _lock_batch(tx: Transaction, where: Filter, after: int, upto: int, size: int) -> list[Record]:
    params = filter_params(where) | {"after": after, "upto": upto, "n": size}
    return tx.run(sql.SELECT_BATCH_FOR_ACTION[where.statement_key], params).records


def _split(found: list[Record], allowed: Callable[[Record], bool]) -> tuple[list[int], list[Held]]:
    """The ids the plan lets go, and the rows it leaves to their live workers."""
    go: list[int] = []
    held: list[Held] = []
    for record in found:
        if allowed(record):
            go.append(int(record["id"]))
        else:
            held.append(Held(int(record["id"]), str(record["locked_by"])))
    return go, held


def _id(row: JobSnapshot) -> int:
    return row.id
