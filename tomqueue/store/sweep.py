"""SweepStore: the self-healing sweeps' statements (orphans, unannounced rows, lost
notifications, rows stranded under a worker's own lease).

Every claim is an UPDATE over rows chosen FOR UPDATE SKIP LOCKED and returns the rows it
marked announced now; the caller publishes them. Concurrent sweepers split the work and
never both win a row. Liveness comes from the holder's advisory lock
(``statements.HOLDER_ALIVE``), never from the age of locked_at.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor
from tomqueue.store.values import snapshots


class SweepStore:
    """What a Sweeper reads and claims; safe to run from many processes at once."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def dead_holders(self, limit: int = 1000) -> list[tuple[int, str, int | None]]:
        """(job id, locked_by, lease key) of locked jobs whose worker's lease is gone now."""
        rows = self._executor.read(sql.DEAD_HOLDERS, {"limit": limit})
        return [(int(r["id"]), str(r["locked_by"]), r["lock_key"]) for r in rows]

    def recover_orphans(self, suspects: Sequence[tuple[int, str]]) -> list[JobSnapshot]:
        """Unlock jobs whose worker has died, counting the crash as a failed attempt.

        Only rows still locked by the same attempt, whose lease is still gone, are touched.
        Nothing is failed here: this may run in a process without the job's class, so the
        worker that locks the row next decides "poison" or "out of attempts" and calls the
        job's failure() hook (tomqueue.verdicts).
        """
        if not suspects:
            return []
        params = {
            "ids": [job_id for job_id, _ in suspects],
            "holders": [holder for _, holder in suspects],
        }
        return snapshots(self._executor.write(sql.RECOVER_ORPHANS, params).records)

    def claim_unannounced(self, overdue_seconds: float, limit: int = 1000) -> list[JobSnapshot]:
        """Take due rows that nobody announced (broker down at enqueue, a deferred manager
        not running) and are overdue by more than ``overdue_seconds``. Workers' sweeps run
        this too, so jobs enqueued during a broker outage run once it is back even with no
        deferred manager.
        """
        params = {"overdue": overdue_seconds, "limit": limit}
        return snapshots(self._executor.write(sql.CLAIM_UNANNOUNCED, params).records)

    def stale_places(self, republish_after_seconds: float) -> list[tuple[str | None, int]]:
        """(named queue, priority) of due, unlocked jobs announced longer ago than the
        threshold: where to look for their lost messages."""
        rows = self._executor.read(sql.STALE_PLACES, {"after": republish_after_seconds})
        return [(row["queue"], int(row["priority"])) for row in rows]

    def claim_stale(
        self,
        priorities: Sequence[int],
        republish_after_seconds: float,
        announced_before: datetime | None = None,
        limit: int = 1000,
        queue: str | None = None,
    ) -> list[JobSnapshot]:
        """Take due, unlocked jobs of the named ``queue`` (None: the default) whose
        announcement is older than the threshold (and than ``announced_before``, if given)."""
        if not priorities:
            return []
        params = {
            "after": republish_after_seconds,
            "before": announced_before,
            "priorities": list(priorities),
            "limit": limit,
            "queue": queue,
        }
        return snapshots(self._executor.write(sql.CLAIM_STALE, params).records)

    def own_locks(self, lease_key: int) -> list[tuple[int, str]]:
        """(job id, locked_by) of the rows locked under this worker's lease key."""
        rows = self._executor.read(sql.OWN_LOCKS, {"key": lease_key})
        return [(int(r["id"]), str(r["locked_by"])) for r in rows]

    def release_stranded(self, stranded: Sequence[tuple[int, str]]) -> list[JobSnapshot]:
        """Unlock rows this worker locked but runs no attempt of (a lock whose reply was
        lost, an outcome that could not be written); the job did not run to an outcome, so
        no attempt is counted."""
        if not stranded:
            return []
        params = {"ids": [i for i, _ in stranded], "holders": [h for _, h in stranded]}
        return snapshots(self._executor.write(sql.RELEASE_STRANDED, params).records)
