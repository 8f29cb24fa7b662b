"""Sweeper: finds committed jobs that nobody is going to run, and makes them run.

Two cases, both safe to sweep from several processes at once:
- orphans: rows locked by a worker whose liveness lease is gone (SIGKILL, crash, lost host);
- lost notifications: due, unlocked rows announced long ago whose priority queue is empty
  (broker down at enqueue, publish lost, queue purged, a row written by plain SQL).

A level whose queue still holds messages is left alone: its backlog is draining, and
republishing every row of a long backlog would only flood the queue with duplicates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from tomqueue.broker import BROKER_FAILURES
from tomqueue.notifications import notification_for
from tomqueue.priority import LEVELS_IN_ORDER, level_for
from tomqueue.runtime import Runtime
from tomqueue.snapshot import JobSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    orphans_recovered: int
    orphans_failed: int
    republished: int


class Sweeper:
    """Run ``sweep()`` now and then; keeps only the orphan suspects between runs."""

    def __init__(self, runtime: Runtime, own_lease_key: int | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.store = runtime.store
        self.own_lease_key = own_lease_key
        # (job id, lease key) -> when first seen without a live lease
        self._suspects: dict[tuple[int, int], float] = {}

    def sweep(self) -> SweepReport:
        recovered, poisoned = self._recover_orphans()
        republished = self._republish_stale()
        if recovered or poisoned or republished:
            log.warning(
                "sweep: %s orphaned job(s) re-announced, %s failed as poison, "
                "%s lost notification(s) republished",
                recovered,
                poisoned,
                republished,
            )
        return SweepReport(recovered, poisoned, republished)

    def _announce(self, rows: list[JobSnapshot]) -> None:
        notes = [notification_for(row, self.settings.priority_map) for row in rows]
        try:
            self.runtime.publisher.publish(notes)
        except BROKER_FAILURES as exc:
            # leave them to the deferred manager, which releases unreleased rows
            log.warning(
                "sweep could not publish %s job(s) (%s); handing them over", len(notes), exc
            )
            self.store.unrelease([row.id for row in rows])

    def _recover_orphans(self) -> tuple[int, int]:
        """Recover a job only once its lease has been gone for ``orphan_grace``: a worker
        whose lease connection merely dropped (a PostgreSQL restart, a terminated backend)
        takes it again well within that time, and must not see its running job re-run."""
        now = time.monotonic()
        grace = self.settings.orphan_grace.total_seconds()
        seen = {
            suspect for suspect in self.store.dead_holders() if suspect[1] != self.own_lease_key
        }
        self._suspects = {s: self._suspects.get(s, now) for s in seen}
        ripe = [s for s, first in self._suspects.items() if now - first >= grace]
        rows = self.store.recover_orphans(ripe, self.settings.max_crashes)
        for suspect in ripe:
            self._suspects.pop(suspect, None)
        pending = [row for row in rows if row.failed_at is None]
        for row in rows:
            if row.failed_at is not None:
                log.error("job %s failed as poison: %s", row.id, row.last_error)
            else:
                log.warning("job %s: %s; running it again", row.id, row.last_error)
        if pending:
            self._announce(pending)
        return len(pending), len(rows) - len(pending)

    def _republish_stale(self) -> int:
        after = self.settings.republish_after.total_seconds()
        priorities = self.store.stale_priorities(after)
        if not priorities:
            return 0
        depths = self.runtime.publisher.queue_depths(LEVELS_IN_ORDER)
        empty_levels = {level for level, depth in depths.items() if depth == 0}
        priority_map = self.settings.priority_map
        chosen = [p for p in priorities if level_for(p, priority_map) in empty_levels]
        rows = self.store.claim_stale(chosen, after)
        if rows:
            self._announce(rows)
        return len(rows)
