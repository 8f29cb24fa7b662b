"""OverviewStore: what operators read about the queue as a whole: pages, counts, stats, leases.

Pages are keyset pages (``id > :after ORDER BY id LIMIT n``): the thousandth page costs
what the first does. Counts and stats scan what they count, so they are for a person who
asks, not for every page view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tomqueue.filters import Filter, filter_params
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor
from tomqueue.store.values import (
    HeldRow,
    Lease,
    Record,
    StateCounts,
    StatsRow,
    ThroughputRow,
    snapshots,
)


class OverviewStore:
    """Read-only views of the jobs table and of the workers' leases."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def page(self, where: Filter, after: int, limit: int) -> tuple[datetime, list[JobSnapshot]]:
        """The database clock and up to ``limit`` jobs matching ``where`` with id > after,
        in id order (one transaction: the clock is the one the state predicates used)."""
        params = filter_params(where) | {"after": after, "n": limit}
        with self._executor.transaction() as tx:
            db_now: datetime = tx.run(sql.DB_NOW).records[0]["now"]
            rows = snapshots(tx.run(sql.LIST_PAGE[where.statement_key], params).records)
        return db_now, rows

    def count(self, where: Filter) -> int:
        statement = sql.COUNT_WHERE[where.statement_key]
        return int(self._executor.read(statement, filter_params(where))[0]["n"])

    def stats(self) -> list[StatsRow]:
        """Counts by state: overall, by priority, by queue and by class (one scan)."""
        return [_stats_row(record) for record in self._executor.read(sql.STATS)]

    def held_rows(self) -> tuple[datetime, list[HeldRow]]:
        """The database clock and every locked row, by lease."""
        records = self._executor.read(sql.HELD_ROWS)
        db_now = records[0]["db_now"] if records else self._db_now()
        return db_now, [_held_row(record) for record in records]

    def leases(self, not_workers: Sequence[int]) -> list[Lease]:
        """Every advisory lock held in tomqueue's namespace but ``not_workers``'s keys."""
        records = self._executor.read(sql.LIVE_LEASES, {"not_workers": list(not_workers)})
        return [_lease(record) for record in records]

    def leases_of(self, keys: Sequence[int]) -> list[Lease]:
        """The leases of ``keys`` that are held now (the deferred leader's, say)."""
        records = self._executor.read(sql.LEASES_OF, {"keys": list(keys)})
        return [_lease(record) for record in records]

    def throughput(
        self, window: timedelta, bucket: timedelta
    ) -> tuple[datetime, list[ThroughputRow]]:
        """The database clock, and the jobs that ended in each ``bucket`` of the trailing
        ``window`` (succeeded and failed for good), oldest first; empty buckets absent."""
        params = {
            "window_seconds": window.total_seconds(),
            "bucket_seconds": bucket.total_seconds(),
        }
        with self._executor.transaction() as tx:
            db_now: datetime = tx.run(sql.DB_NOW).records[0]["now"]
            records = tx.run(sql.THROUGHPUT, params).records
        rows = [ThroughputRow(r["bucket"], int(r["succeeded"]), int(r["failed"])) for r in records]
        return db_now, rows

    def gauges(self) -> tuple[datetime | None, list[tuple[str | None, str, int, datetime | None]]]:
        """The database clock (None with no jobs at all), and (queue, state, count, oldest
        due run_at) for each queue and state that has jobs (``statements.JOB_GAUGES``)."""
        records = self._executor.read(sql.JOB_GAUGES)
        db_now = records[0]["db_now"] if records else None
        return db_now, [(r["queue"], str(r["state"]), int(r["n"]), r["oldest"]) for r in records]

    def _db_now(self) -> datetime:
        value: datetime = self._executor.read(sql.DB_NOW)[0]["now"]
        return value


def _stats_row(record: Record) -> StatsRow:
    group: str
    key: int | str | None
    if not record["g_priority"]:
        group, key = "priority", record["priority"]
    elif not record["g_queue"]:
        group, key = "queue", record["queue"]
    elif not record["g_class"]:
        group, key = "class", record["class_name"]
    else:
        group, key = "total", None
    counts = StateCounts(
        queued=int(record["queued"]),
        scheduled=int(record["scheduled"]),
        running=int(record["running"]),
        failed=int(record["failed"]),
    )
    return StatsRow(group, key, counts, record["oldest_queued_run_at"], record["db_now"])


def _held_row(record: Record) -> HeldRow:
    return HeldRow(
        job_id=int(record["id"]),
        lock_key=record["lock_key"],
        locked_by=str(record["locked_by"]),
        locked_at=record["locked_at"],
        class_name=str(record["class_name"]),
        queue=record["queue"],
        priority=int(record["priority"]),
        attempts=int(record["attempts"]),
        alive=bool(record["alive"]),
    )


def _lease(record: Record) -> Lease:
    """A lease row; an empty application_name (a session that set none) is no name."""
    return Lease(
        int(record["key"]), record["since"], record["client_addr"], record["session_name"] or None
    )
