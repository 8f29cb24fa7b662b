"""DeferredStore: the deferred manager's reads and writes (which future rows to hold, and
which it has released)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor


class DeferredStore:
    """Finds rows nobody has announced yet and marks the ones the manager announced."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def fetch_unreleased(
        self, horizon_seconds: float, limit: int
    ) -> tuple[datetime, list[tuple[int, str, datetime, int, str | None]]]:
        """Rows the deferred manager must release within the horizon, earliest first.

        Returns the database clock and (id, digest, run_at, priority, queue) tuples. The digest is
        computed by PostgreSQL (``statements.DIGEST``), so the (possibly large) handlers
        never cross the wire. Both reads share one transaction, so one ``now()``.
        """
        with self._executor.transaction() as tx:
            db_now: datetime = tx.run(sql.DB_NOW).records[0]["now"]
            params = {"horizon": horizon_seconds, "limit": limit}
            rows = tx.run(sql.FETCH_UNRELEASED, params).records
        return db_now, [
            (r["id"], r["digest"], r["run_at"], r["priority"], r["queue"]) for r in rows
        ]

    def mark_released_at(self, released: Sequence[tuple[int, datetime]]) -> None:
        """Mark rows released, but only those not marked already whose run_at is still the
        one announced (a row rescheduled meanwhile is announced again later)."""
        if released:
            params = {"ids": [i for i, _ in released], "run_ats": [t for _, t in released]}
            self._executor.write(sql.MARK_RELEASED, params)
