"""JobStore: every SQL statement tomqueue runs against the jobs table, in one place.

Methods return JobSnapshot values, never live ORM objects. Each method is one short
transaction: no transaction stays open while a job runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, OperationalError

from tomqueue.admission import Admission, admit
from tomqueue.database import ADVISORY_NAMESPACE
from tomqueue.error_text import storable
from tomqueue.plans import plan_failure, plan_retry
from tomqueue.snapshot import JobSnapshot

_COLUMNS = (
    "id, priority, attempts, handler, last_error, run_at, locked_at, locked_by, failed_at, "
    "queue, created_at, updated_at, released_at, crashes, lock_key"
)

_J_COLUMNS = ", ".join("j." + name.strip() for name in _COLUMNS.split(","))

# Is the worker whose lease key is j.lock_key still alive? Its session-level advisory lock
# dies with its database connection, i.e. with the process: a proof, not an age guess.
_HOLDER_ALIVE = f"""
    (j.lock_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = {ADVISORY_NAMESPACE}::oid
          AND l.objid = j.lock_key::oid
          AND l.objsubid = 2))
"""

# snapshot.row_digest, computed in SQL: same fields, same separators, same UTC format
_DIGEST_SQL = """left(encode(sha256(convert_to(
    id::text || chr(31) || handler || chr(31)
    || to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
    || chr(31) || attempts::text || chr(31) || priority::text, 'UTF8')), 'hex'), 24)"""

_INSERT = text(
    f"""
    INSERT INTO tomqueue_jobs
        (priority, handler, run_at, queue, created_at, updated_at, released_at)
    SELECT t.p, t.h, COALESCE(t.r, now()), t.q, now(), now(),
           CASE WHEN COALESCE(t.r, now()) <= now() THEN now() END
    FROM unnest(CAST(:priorities AS integer[]), CAST(:handlers AS text[]),
                CAST(:run_ats AS timestamptz[]), CAST(:queues AS text[]))
         WITH ORDINALITY AS t(p, h, r, q, ord)
    ORDER BY t.ord
    RETURNING {_COLUMNS}
    """
)


# The worker's two statements per job, in the driver's own parameter style: they run on
# the slot's own connection, straight through psycopg (see JobStore._hot_execute).
_FAST_LOCK = f"""UPDATE tomqueue_jobs SET locked_at = now(), locked_by = %(by)s,
        lock_key = %(key)s, updated_at = now()
    WHERE id = %(id)s AND failed_at IS NULL AND locked_by IS NULL AND run_at <= now()
      AND {_DIGEST_SQL} = %(digest)s
    RETURNING {_COLUMNS}, now() AS db_now"""
# locked_by names the attempt ("host pid:1 key:2 run:3"), not only the process: a run
# whose row was taken over and run again (by this worker or another) can never delete or
# fail the row under the new run.
_DELETE_HELD = "DELETE FROM tomqueue_jobs WHERE id = %(id)s AND locked_by = %(by)s"


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


def snapshot_from(row: Row[Any]) -> JobSnapshot:
    return snapshot_from_mapping(row._mapping)


def snapshot_from_mapping(m: Mapping[Any, Any]) -> JobSnapshot:
    return JobSnapshot(
        id=m["id"],
        priority=m["priority"],
        attempts=m["attempts"],
        handler=m["handler"],
        last_error=m["last_error"],
        run_at=m["run_at"],
        locked_at=m["locked_at"],
        locked_by=m["locked_by"],
        failed_at=m["failed_at"],
        queue=m["queue"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        released_at=m["released_at"],
        crashes=m["crashes"],
        lock_key=m["lock_key"],
    )


class JobStore:
    """The jobs table's gatekeeper; give it an Engine (or a Connection for ``insert``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # single-statement operations skip BEGIN/COMMIT: one round trip instead of three
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._local = threading.local()

    def _hot_execute(self, sql: str, params: Mapping[str, Any]) -> psycopg.Cursor[dict[str, Any]]:
        """Run one statement of the worker's hot path on the thread's own connection,
        through the driver directly: SQLAlchemy's per-statement work costs more CPU than the
        statement here. Driver errors come out as SQLAlchemy's, so retries work the same."""
        with self._hot() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            try:
                return driver.cursor(row_factory=dict_row).execute(sql, params)
            except psycopg.OperationalError as exc:
                conn.invalidate(exc)
                raise OperationalError(sql, dict(params), exc, connection_invalidated=True) from exc

    @contextmanager
    def _hot(self) -> Iterator[Connection]:
        """The calling thread's own autocommit connection, kept between calls.

        Worker slots lock and finish a job every few milliseconds; checking a connection
        out of the pool and resetting it each time costs more CPU than the statement. A
        connection found dead is dropped, and the caller's retry opens a new one.
        """
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._local.conn = self.autocommit.connect()
        try:
            yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or conn.invalidated:
                self._local.conn = None
                conn.close()
            raise

    # -- enqueue ---------------------------------------------------------------------------

    @staticmethod
    def insert(conn: Connection, new_jobs: Sequence[NewJob]) -> list[JobSnapshot]:
        """Insert in one statement, in the caller's transaction; rows come back in order."""
        params = {
            "priorities": [job.priority for job in new_jobs],
            "handlers": [job.handler for job in new_jobs],
            "run_ats": [job.run_at for job in new_jobs],
            "queues": [job.queue for job in new_jobs],
        }
        rows = [snapshot_from(row) for row in conn.execute(_INSERT, params)]
        # ids come from the sequence in the SELECT's order, so id order is input order
        return sorted(rows, key=lambda snap: snap.id)

    def insert_committed(self, new_jobs: Sequence[NewJob]) -> list[JobSnapshot]:
        """Insert in a short transaction of our own.

        A connection found dead at the INSERT (say, after a PostgreSQL restart emptied the
        pool's connections) is retried: nothing was written. A failed COMMIT is not retried,
        because its outcome is unknown and a retry could enqueue the job twice.
        """
        for attempt in range(3):
            conn = self.engine.connect()
            try:
                try:
                    rows = self.insert(conn, new_jobs)
                except DBAPIError as exc:
                    if exc.connection_invalidated and attempt < 2:
                        continue
                    raise
                conn.commit()
                return rows
            finally:
                conn.close()
        raise AssertionError("unreachable")

    # -- worker ----------------------------------------------------------------------------

    def lock_for_run(self, job_id: int, digest: str, locked_by: str, lease_key: int) -> LockResult:
        """Re-check the row, decide, and lock it if it may run.

        The common case — due, unlocked, not failed, digest matching — is one conditional
        UPDATE in autocommit. Anything else falls back to reading the row FOR UPDATE and
        deciding with ``admit``. Either way the lock is the row's locked_by/lock_key, backed
        by the worker's live advisory lock, not a transaction held open while the job runs.
        ``locked_by`` names this attempt, so a retry after a lost reply finds its own lock.
        """
        locked = self._hot_execute(
            _FAST_LOCK, {"id": job_id, "digest": digest, "by": locked_by, "key": lease_key}
        ).fetchone()
        if locked is not None:
            return LockResult(Admission.RUN, snapshot_from_mapping(locked), locked["db_now"])
        return self._lock_carefully(job_id, digest, locked_by, lease_key)

    def _lock_carefully(
        self, job_id: int, digest: str, locked_by: str, lease_key: int
    ) -> LockResult:
        with self.engine.begin() as conn:
            found = conn.execute(
                text(
                    f"SELECT {_COLUMNS}, now() AS db_now, {_HOLDER_ALIVE} AS holder_alive "
                    "FROM tomqueue_jobs j WHERE j.id = :id FOR UPDATE"
                ),
                {"id": job_id},
            ).first()
            if found is None:
                db_now = conn.execute(text("SELECT now()")).scalar_one()
                return LockResult(Admission.DROP_MISSING, None, db_now)
            row = snapshot_from(found)
            db_now = found._mapping["db_now"]
            decision = admit(
                row, digest, db_now, bool(found._mapping["holder_alive"]), own_lock=locked_by
            )
            if decision is Admission.DEFER:
                # hand back to the deferred path: the manager releases rows with no release
                conn.execute(
                    text("UPDATE tomqueue_jobs SET released_at = NULL WHERE id = :id"),
                    {"id": job_id},
                )
            elif decision is Admission.RUN:
                locked = conn.execute(
                    text(
                        f"""UPDATE tomqueue_jobs SET locked_at = now(), locked_by = :by,
                            lock_key = :key, updated_at = now()
                        WHERE id = :id RETURNING {_COLUMNS}"""
                    ),
                    {"id": job_id, "by": locked_by, "key": lease_key},
                ).one()
                return LockResult(decision, snapshot_from(locked), db_now)
            return LockResult(decision, row, db_now)

    def delete_succeeded(self, job_id: int, locked_by: str) -> bool:
        """Delete a finished job, if this attempt still holds it."""
        return self._hot_execute(_DELETE_HELD, {"id": job_id, "by": locked_by}).rowcount > 0

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
        with self._hot() as conn:
            row = conn.execute(
                text(
                    f"""UPDATE tomqueue_jobs SET attempts = :attempts, last_error = :error,
                        run_at = COALESCE(:run_at, run_at),
                        failed_at = CASE WHEN :fail_now THEN now() END,
                        released_at = NULL, crashes = 0,
                        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now()
                    WHERE id = :id AND locked_by = :by RETURNING {_COLUMNS}"""
                ),
                {
                    "id": job_id,
                    "by": locked_by,
                    "attempts": plan.attempts,
                    "error": plan.last_error,
                    "run_at": plan.run_at,
                    "fail_now": plan.fail_now,
                },
            ).first()
            return None if row is None else snapshot_from(row)

    def fail_held(self, job_id: int, locked_by: str, last_error: str) -> JobSnapshot | None:
        """Fail a job this attempt holds for good, without running it (unknown class, a
        bad handler, poison, attempts used up by crashes): no retries, kept for a person."""
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    f"""UPDATE tomqueue_jobs SET last_error = :error,
                        attempts = GREATEST(attempts, 1),
                        failed_at = now(), locked_at = NULL, locked_by = NULL,
                        lock_key = NULL, updated_at = now()
                    WHERE id = :id AND locked_by = :by RETURNING {_COLUMNS}"""
                ),
                {"id": job_id, "by": locked_by, "error": storable(last_error)},
            ).first()
            return None if row is None else snapshot_from(row)

    # -- operators -------------------------------------------------------------------------

    def get(self, job_id: int) -> JobSnapshot | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(f"SELECT {_COLUMNS} FROM tomqueue_jobs WHERE id = :id"), {"id": job_id}
            ).first()
            return None if row is None else snapshot_from(row)

    def list_jobs(self, failed_only: bool = False, limit: int = 100) -> list[JobSnapshot]:
        where = "failed_at IS NOT NULL" if failed_only else "TRUE"
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT {_COLUMNS} FROM tomqueue_jobs WHERE {where} ORDER BY id LIMIT :n"),
                {"n": limit},
            )
            return [snapshot_from(row) for row in rows]

    def count_jobs(self, failed_only: bool = False) -> int:
        where = "failed_at IS NOT NULL" if failed_only else "TRUE"
        with self.engine.connect() as conn:
            return int(
                conn.execute(text(f"SELECT count(*) FROM tomqueue_jobs WHERE {where}")).scalar_one()
            )

    def retry(self, job_id: int) -> RetryResult:
        """Make a job pending and due now, with a fresh set of attempts.

        A job a live worker is running is left alone: unlocking it would let a second run
        start beside the first. A job whose worker has died may be retried.
        """
        with self.engine.begin() as conn:
            found = conn.execute(
                text(
                    f"SELECT j.locked_by, {_HOLDER_ALIVE} AS holder_alive "
                    "FROM tomqueue_jobs j WHERE j.id = :id FOR UPDATE"
                ),
                {"id": job_id},
            ).first()
            if found is None:
                return RetryResult(None)
            plan = plan_retry(found.locked_by, bool(found.holder_alive))
            if not plan.reset:
                return RetryResult(None, running_on=plan.running_on)
            row = conn.execute(
                text(
                    f"""UPDATE tomqueue_jobs SET failed_at = NULL, attempts = :attempts,
                        crashes = :crashes, run_at = now(), released_at = now(),
                        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now()
                    WHERE id = :id RETURNING {_COLUMNS}"""
                ),
                {"id": job_id, "attempts": plan.attempts, "crashes": plan.crashes},
            ).one()
            return RetryResult(snapshot_from(row))

    def delete(self, job_id: int) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(text("DELETE FROM tomqueue_jobs WHERE id = :id"), {"id": job_id})
            return bool(result.rowcount)

    def iter_due_pending(self, batch_size: int = 1000) -> Iterator[list[JobSnapshot]]:
        """Every pending, due, unlocked job in id order, a batch at a time, for ``tomqueue
        republish`` (a job a worker holds needs no news)."""
        last_id = 0
        while True:
            with self.engine.connect() as conn:
                rows = [
                    snapshot_from(row)
                    for row in conn.execute(
                        text(
                            f"""SELECT {_COLUMNS} FROM tomqueue_jobs
                            WHERE failed_at IS NULL AND locked_by IS NULL
                              AND run_at <= now() AND id > :last
                            ORDER BY id LIMIT :n"""
                        ),
                        {"last": last_id, "n": batch_size},
                    )
                ]
            if not rows:
                return
            yield rows
            last_id = rows[-1].id

    def unrelease(self, ids: Sequence[int]) -> None:
        """Hand jobs whose announcement failed to the deferred manager, which releases them."""
        if not ids:
            return
        with self.autocommit.connect() as conn:
            conn.execute(
                text(
                    "UPDATE tomqueue_jobs SET released_at = NULL "
                    "WHERE id = ANY(CAST(:ids AS bigint[])) AND failed_at IS NULL"
                ),
                {"ids": list(ids)},
            )

    def unrelease_future(self) -> int:
        """Ask the deferred manager to look again at every future job (after a purge)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                text(
                    "UPDATE tomqueue_jobs SET released_at = NULL "
                    "WHERE failed_at IS NULL AND run_at > now() AND released_at IS NOT NULL"
                )
            )
            return int(result.rowcount)

    def db_now(self) -> datetime:
        with self.engine.connect() as conn:
            value: datetime = conn.execute(text("SELECT now()")).scalar_one()
            return value

    # -- deferred manager ------------------------------------------------------------------

    def fetch_unreleased(
        self, horizon_seconds: float, limit: int
    ) -> tuple[datetime, list[tuple[int, str, datetime, int]]]:
        """Rows the deferred manager must release within the horizon, earliest first.

        Returns the database clock and (id, digest, run_at, priority) tuples. The digest is
        computed by PostgreSQL, so the (possibly large) handlers never cross the wire.
        """
        with self.engine.connect() as conn:
            db_now = conn.execute(text("SELECT now()")).scalar_one()
            rows = conn.execute(
                text(
                    f"""SELECT id, {_DIGEST_SQL} AS digest, run_at, priority
                    FROM tomqueue_jobs
                    WHERE failed_at IS NULL AND released_at IS NULL
                      AND run_at <= now() + make_interval(secs => :horizon)
                    ORDER BY run_at LIMIT :limit"""
                ),
                {"horizon": horizon_seconds, "limit": limit},
            )
            return db_now, [(r[0], r[1], r[2], r[3]) for r in rows]

    def mark_released_at(
        self, released: Sequence[tuple[int, datetime]], only_unreleased: bool = True
    ) -> None:
        """Mark rows released, but only if their run_at is still the one we announced
        (and, unless told otherwise, only rows not marked released already)."""
        if not released:
            return
        unreleased = "AND j.released_at IS NULL" if only_unreleased else ""
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"""UPDATE tomqueue_jobs AS j SET released_at = now()
                    FROM unnest(CAST(:ids AS bigint[]), CAST(:run_ats AS timestamptz[]))
                         AS r(id, run_at)
                    WHERE j.id = r.id AND j.run_at = r.run_at AND j.failed_at IS NULL
                      {unreleased}"""
                ),
                {"ids": [i for i, _ in released], "run_ats": [t for _, t in released]},
            )

    def sql_digest(self, job_id: int) -> str | None:
        """The digest as PostgreSQL computes it (tests check it equals Python's)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                text(f"SELECT {_DIGEST_SQL} FROM tomqueue_jobs WHERE id = :id"), {"id": job_id}
            ).scalar()
            return None if value is None else str(value)

    # -- self-healing sweeps -----------------------------------------------------------------

    def dead_holders(self, limit: int = 1000) -> list[tuple[int, str, int | None]]:
        """(job id, locked_by, lease key) of locked jobs whose worker's lease is gone now."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"""SELECT j.id, j.locked_by, j.lock_key FROM tomqueue_jobs j
                    WHERE j.locked_at IS NOT NULL AND j.locked_by IS NOT NULL
                      AND j.failed_at IS NULL
                      AND NOT {_HOLDER_ALIVE}
                    ORDER BY j.locked_at LIMIT :limit"""
                ),
                {"limit": limit},
            )
            return [(int(r[0]), str(r[1]), r[2]) for r in rows]

    def recover_orphans(self, suspects: Sequence[tuple[int, str]]) -> list[JobSnapshot]:
        """Unlock jobs whose worker has died, counting the crash as a failed attempt.

        Only rows still locked by the same attempt, whose lease is still gone, are touched;
        liveness comes from the holder's advisory lock, never from the age of locked_at.
        Nothing is failed here: this may run in a process without the job's class, so the
        worker that locks the row next decides "poison" or "out of attempts" and calls the
        job's failure() hook (tomqueue.verdicts). Rows come back announced-now: the caller
        publishes them. SKIP LOCKED makes concurrent sweepers split the work.
        """
        if not suspects:
            return []
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    f"""WITH dead AS (
                        SELECT j.id FROM tomqueue_jobs j
                        JOIN unnest(CAST(:ids AS bigint[]), CAST(:holders AS text[]))
                             AS s(id, locked_by) ON s.id = j.id AND s.locked_by = j.locked_by
                        WHERE j.failed_at IS NULL AND NOT {_HOLDER_ALIVE}
                        FOR UPDATE OF j SKIP LOCKED)
                    UPDATE tomqueue_jobs j SET
                        attempts = j.attempts + 1,
                        crashes = j.crashes + 1,
                        last_error = left('worker ' || j.locked_by
                            || ' died while running this job'
                            || COALESCE(E'\nprevious error: ' || j.last_error, ''), 65536),
                        run_at = now(),
                        released_at = now(),
                        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now()
                    FROM dead WHERE j.id = dead.id
                    RETURNING {_J_COLUMNS}"""
                ),
                {
                    "ids": [job_id for job_id, _ in suspects],
                    "holders": [holder for _, holder in suspects],
                },
            )
            return [snapshot_from(row) for row in rows]

    def claim_unannounced(self, overdue_seconds: float, limit: int = 1000) -> list[JobSnapshot]:
        """Take due rows that nobody announced (broker down at enqueue, a deferred manager
        not running) and are overdue by more than ``overdue_seconds``, marking them
        announced now; the caller publishes them. Workers' sweeps run this too, so jobs
        enqueued during a broker outage run once it is back even with no deferred manager.
        """
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    f"""WITH due AS (
                        SELECT id FROM tomqueue_jobs
                        WHERE failed_at IS NULL AND released_at IS NULL AND locked_by IS NULL
                          AND run_at <= now() - make_interval(secs => :overdue)
                        ORDER BY run_at LIMIT :limit
                        FOR UPDATE SKIP LOCKED)
                    UPDATE tomqueue_jobs j SET released_at = now()
                    FROM due WHERE j.id = due.id
                    RETURNING {_J_COLUMNS}"""
                ),
                {"overdue": overdue_seconds, "limit": limit},
            )
            return [snapshot_from(row) for row in rows]

    def stale_priorities(self, republish_after_seconds: float) -> list[int]:
        """Priorities of due, unlocked jobs announced longer ago than the threshold."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    """SELECT DISTINCT priority FROM tomqueue_jobs
                    WHERE failed_at IS NULL AND locked_at IS NULL AND run_at <= now()
                      AND released_at < now() - make_interval(secs => :after)"""
                ),
                {"after": republish_after_seconds},
            )
            return [int(row[0]) for row in rows]

    def claim_stale(
        self,
        priorities: Sequence[int],
        republish_after_seconds: float,
        announced_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[JobSnapshot]:
        """Take due, unlocked jobs whose announcement is older than the threshold (and than
        ``announced_before``, if given), marking them announced now; the caller publishes
        them. Concurrent sweepers never both win a row."""
        if not priorities:
            return []
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    f"""WITH stale AS (
                        SELECT id FROM tomqueue_jobs
                        WHERE failed_at IS NULL AND locked_at IS NULL AND run_at <= now()
                          AND released_at < now() - make_interval(secs => :after)
                          AND released_at < COALESCE(CAST(:before AS timestamptz), 'infinity')
                          AND priority = ANY(CAST(:priorities AS integer[]))
                        ORDER BY released_at LIMIT :limit
                        FOR UPDATE SKIP LOCKED)
                    UPDATE tomqueue_jobs j SET released_at = now()
                    FROM stale WHERE j.id = stale.id
                    RETURNING {_J_COLUMNS}"""
                ),
                {
                    "after": republish_after_seconds,
                    "before": announced_before,
                    "priorities": list(priorities),
                    "limit": limit,
                },
            )
            return [snapshot_from(row) for row in rows]

    def own_locks(self, lease_key: int) -> list[tuple[int, str]]:
        """(job id, locked_by) of the rows locked under this worker's lease key."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    """SELECT id, locked_by FROM tomqueue_jobs
                    WHERE locked_at IS NOT NULL AND lock_key = :key
                      AND locked_by IS NOT NULL AND failed_at IS NULL"""
                ),
                {"key": lease_key},
            )
            return [(int(r[0]), str(r[1])) for r in rows]

    def release_stranded(self, stranded: Sequence[tuple[int, str]]) -> list[JobSnapshot]:
        """Unlock rows this worker locked but runs no attempt of (a lock whose reply was
        lost, an outcome that could not be written), announcing them now; the job did not
        run to an outcome, so no attempt is counted."""
        if not stranded:
            return []
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    f"""UPDATE tomqueue_jobs j SET released_at = now(),
                        locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now()
                    FROM unnest(CAST(:ids AS bigint[]), CAST(:holders AS text[]))
                         AS s(id, locked_by)
                    WHERE j.id = s.id AND j.locked_by = s.locked_by AND j.failed_at IS NULL
                    RETURNING {_J_COLUMNS}"""
                ),
                {"ids": [i for i, _ in stranded], "holders": [h for _, h in stranded]},
            )
            return [snapshot_from(row) for row in rows]
