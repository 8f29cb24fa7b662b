"""CronStore: the records that make a cron schedule fire once per fire time
(``tomqueue_cron_fires``), for the deferred managers and ``tomqueue cron``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor


class CronStore:
    """Claims fire times, links them to the jobs enqueued for them, and reads them back."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def claim(self, conn: Connection, name: str, fire_at: datetime) -> bool:
        """Record (name, fire_at) in the caller's transaction; False when a manager has
        already (the caller then enqueues nothing). Waits for a claim not yet committed."""
        params = {"name": name, "fire_at": fire_at}
        return bool(self._executor.in_caller(conn, sql.CRON_CLAIM, params).records)

    def link(self, conn: Connection, name: str, fire_at: datetime, job_id: int) -> None:
        params = {"name": name, "fire_at": fire_at, "job_id": job_id}
        self._executor.in_caller(conn, sql.CRON_LINK, params)

    def baseline(self, name: str, fire_at: datetime) -> None:
        """Record a fire time as seen without running it (a schedule's first sight)."""
        self._executor.autocommit(sql.CRON_CLAIM, {"name": name, "fire_at": fire_at})

    def last_fires(self, names: Sequence[str]) -> dict[str, datetime]:
        """The newest fire time recorded for each schedule (run or baseline)."""
        rows = self._executor.autocommit(sql.CRON_LAST, {"names": list(names)}).records
        return {str(r["name"]): r["fire_at"] for r in rows}

    def last_runs(self, names: Sequence[str]) -> dict[str, tuple[datetime, int]]:
        """The newest fire time each schedule enqueued a job for, and that job's id."""
        rows = self._executor.autocommit(sql.CRON_LAST_RUN, {"names": list(names)}).records
        return {str(r["name"]): (r["fire_at"], int(r["job_id"])) for r in rows}

    def purge(self, keep_seconds: float) -> int:
        """Delete fire records older than ``keep_seconds`` but each schedule's newest."""
        return self._executor.autocommit(sql.CRON_PURGE, {"keep": keep_seconds}).rowcount
