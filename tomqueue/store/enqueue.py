"""EnqueueStore: what ``tomqueue.enqueue`` writes, in the caller's transaction or its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from tomqueue.gates import SERIAL_PREFIX
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor, Params
from tomqueue.store.values import NewJob, Record, snapshots

if TYPE_CHECKING:
    from tomqueue.enqueue.caller import CallerTransaction


class EnqueueStore:
    """Inserts rows (due ones marked announced now) and hands back unannounced ones."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def insert(
        self, conn: Connection | CallerTransaction, new_jobs: Sequence[NewJob]
    ) -> list[JobSnapshot]:
        """Insert in one statement, in the caller's transaction (its SQLAlchemy Connection,
        or a ``CallerTransaction``); rows come back in order."""
        records = self._in_caller(conn, sql.INSERT_JOBS, _insert_params(new_jobs))
        return _in_input_order(snapshots(records))

    def insert_committed(self, new_jobs: Sequence[NewJob]) -> list[JobSnapshot]:
        """Insert in a short transaction of our own (retried only when nothing was written:
        see ``Executor.committed``)."""
        rows = self._executor.committed(sql.INSERT_JOBS, _insert_params(new_jobs))
        return _in_input_order(snapshots(rows.records))

    def waiting_twins(
        self, conn: Connection | CallerTransaction | None, keys: Sequence[str]
    ) -> dict[str, int]:
        """The ids of the jobs waiting to run with these unique keys (not failed, not
        locked), in the caller's transaction when ``conn`` is given."""
        params = {"keys": list(keys)}
        if conn is not None:
            records = self._in_caller(conn, sql.WAITING_TWINS, params)
        else:
            records = self._executor.autocommit(sql.WAITING_TWINS, params).records
        return {str(r["unique_key"]): int(r["id"]) for r in records}

    def _in_caller(
        self, conn: Connection | CallerTransaction, statement: str, params: Params
    ) -> list[Record]:
        if isinstance(conn, Connection):
            return self._executor.in_caller(conn, statement, params).records
        # not SQLAlchemy's: the statement goes to the caller's driver as SQLAlchemy would
        # have sent it
        return list(conn.run(self._executor.driver_sql(statement), params))

    def unrelease(self, ids: Sequence[int]) -> None:
        """Hand jobs whose announcement failed to the deferred manager, which releases them."""
        if ids:
            self._executor.autocommit(sql.UNRELEASE, {"ids": list(ids)})


def _insert_params(new_jobs: Sequence[NewJob]) -> Params:
    return {
        "serial_prefix": SERIAL_PREFIX,
        "serial_firsts": firsts_of_their_key(new_jobs),
        "priorities": [job.priority for job in new_jobs],
        "handlers": [job.handler for job in new_jobs],
        "run_ats": [job.run_at for job in new_jobs],
        "queues": [job.queue for job in new_jobs],
        "unique_keys": [job.unique_key for job in new_jobs],
        "serial_keys": [job.serial_key for job in new_jobs],
        "trace_contexts": [job.trace_context for job in new_jobs],
    }


def firsts_of_their_key(new_jobs: Sequence[NewJob]) -> list[bool]:
    """For each job, whether no job before it in the batch has its serial key (those after
    the first are written parked: they wait for it)."""
    seen: set[str] = set()
    firsts = []
    for job in new_jobs:
        firsts.append(job.serial_key is None or job.serial_key not in seen)
        if job.serial_key is not None:
            seen.add(job.serial_key)
    return firsts


def _in_input_order(rows: list[JobSnapshot]) -> list[JobSnapshot]:
    # ids come from the sequence in the SELECT's order, so id order is input order
    return sorted(rows, key=lambda snap: snap.id)
