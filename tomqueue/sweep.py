"""Sweeper: finds committed jobs that nobody is going to run, and makes them run.

Three cases, all safe to sweep from several processes at once (every worker and every
deferred manager runs a Sweeper):
- orphans: rows locked by a worker whose liveness lease has been gone for ``orphan_grace``
  (SIGKILL, crash, lost host): unlocked, the crash counted, announced again;
- unannounced rows: due rows nobody announced (broker down at enqueue, no deferred manager
  running), overdue by a few seconds: announced;
- lost notifications: due, unlocked rows announced more than ``republish_after`` ago whose
  message is no longer in their RabbitMQ queue (a level of their named queue): announced
  again;
- parked jobs nobody woke (the job they waited behind died with its worker, or a person
  deleted a serial key's failed head): woken if their gate lets them pass now.

A queue is first in, first out: if the message at the head of a level's queue was announced
after a row was, the row's own message has been taken already, so if the row is still
waiting its message was lost. The sweep reads the head (``basic.get`` and give it back) to
tell a lost notification from one waiting in a long backlog, so a backlog is never flooded
with duplicates and a lost notification is found whatever the queues hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tomqueue.broker import BROKER_FAILURES
from tomqueue.errors import MalformedNotificationError
from tomqueue.gates import limit_gate, limited_class
from tomqueue.job import MAX_CONCURRENCY_LIMIT, registry
from tomqueue.notifications import notification_for
from tomqueue.priority import level_for
from tomqueue.snapshot import JobSnapshot
from tomqueue.wire import decode_notification

if TYPE_CHECKING:  # the App makes these; they only need its type
    from tomqueue.app import App
    from tomqueue.broker.publisher import QueuePlace

log = logging.getLogger(__name__)

# Announcements this close together may reach the queue in either order (a batch is
# published after its commit): only rows announced this much before the head count as lost.
ORDER_MARGIN = timedelta(seconds=2)
# a serial job parked this long with its turn come was missed by its wake: the sweep's
PARKED_SWEEP_AFTER = timedelta(seconds=1)


@dataclass(frozen=True)
class SweepReport:
    orphans_recovered: int
    unannounced_released: int
    republished: int
    parked_woken: int = 0


class _Skip:
    """The head of a queue says nothing this time (its row moved on): try next sweep."""


SKIP = _Skip()


class Sweeper:
    """Run ``sweep()`` now and then; keeps only the orphan suspects between runs."""

    def __init__(
        self,
        runtime: App,
        own_lease_key: int | None = None,
        own_attempts: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.store = runtime.store
        self.own_lease_key = own_lease_key
        self.own_attempts = own_attempts
        # (job id, locked_by) -> when first seen without a live lease
        self._suspects: dict[tuple[int, str], float] = {}
        # rows under our own lease with no attempt in flight, seen at the last sweep
        self._stranded: set[tuple[int, str]] = set()

    def sweep(self) -> SweepReport:
        self._release_stranded()
        recovered = self._recover_orphans()
        unannounced = self._release_unannounced()
        republished = self._republish_stale()
        woken = self._wake_parked()
        if recovered or unannounced or republished:
            log.warning(
                "sweep: %s orphaned job(s) re-announced, %s unannounced job(s) released, "
                "%s lost notification(s) republished",
                recovered,
                unannounced,
                republished,
            )
        if woken:
            log.info("sweep: %s parked job(s) woken", woken)
        return SweepReport(recovered, unannounced, republished, woken)

    def _wake_parked(self) -> int:
        """Wake the parked jobs whose gate has room that no leaving job woke. A limit gate
        is only woken by a process that has its class (it needs its limit); one whose
        class no longer has a limit lets every parked job go."""
        gates = self.store.gates
        rows = gates.wake_serial_heads(parked_for=PARKED_SWEEP_AFTER.total_seconds())
        for name in gates.parked_limits():
            job_class = registry.lookup(limited_class(name) or "")
            if job_class is None:
                continue
            limit = job_class.concurrency_limit or MAX_CONCURRENCY_LIMIT
            rows += gates.wake(limit_gate(job_class.class_name(), limit))
        if rows:
            self._announce(rows)
        return len(rows)

    def _announce(self, rows: list[JobSnapshot]) -> None:
        notes = [notification_for(row, self.settings.priority_map) for row in rows]
        try:
            self.runtime.publisher.publish(notes)
        except BROKER_FAILURES as exc:
            # leave them unannounced: the next sweep (or the deferred manager) retries
            log.warning(
                "sweep could not publish %s job(s) (%s); handing them over", len(notes), exc
            )
            self.store.enqueue.unrelease([row.id for row in rows])

    def _release_stranded(self) -> None:
        """Unlock rows locked under this worker's own lease that none of its attempts is
        running, once seen so at two sweeps in a row. The in-flight set is read after the
        rows: an attempt registers before it locks and leaves after its outcome is written,
        so a row found here without its attempt was abandoned."""
        if self.own_lease_key is None or self.own_attempts is None:
            return
        locked = self.store.sweep.own_locks(self.own_lease_key)
        running = self.own_attempts()
        now_stranded = {lock for lock in locked if lock[1] not in running}
        ripe = sorted(now_stranded & self._stranded)
        self._stranded = now_stranded - set(ripe)
        rows = self.store.sweep.release_stranded(ripe)
        for row in rows:
            log.warning("job %s was locked by this worker with no run in flight; released", row.id)
        if rows:
            self._announce(rows)

    def _recover_orphans(self) -> int:
        """Recover a job only once its lease has been gone for ``orphan_grace``: a worker
        whose lease connection merely dropped (a PostgreSQL restart, a terminated backend)
        takes it again well within that time, and must not see its running job re-run."""
        now = time.monotonic()
        grace = self.settings.orphan_grace.total_seconds()
        seen = {
            (job_id, holder)
            for job_id, holder, key in self.store.sweep.dead_holders()
            if key != self.own_lease_key  # our own lease is only between connections
        }
        self._suspects = {s: self._suspects.get(s, now) for s in seen}
        ripe = [s for s, first in self._suspects.items() if now - first >= grace]
        rows = self.store.sweep.recover_orphans(ripe)
        for suspect in ripe:
            self._suspects.pop(suspect, None)
        for row in rows:
            log.warning("job %s: %s; running it again", row.id, row.last_error)
            self.runtime.observers.job_crashed(row)  # tomqueue_jobs_completed_total{crashed}
        if rows:
            self._announce(rows)
        return len(rows)

    def _release_unannounced(self) -> int:
        # the deferred manager releases due rows within a poll interval; only rows it has
        # clearly missed (none running, or the broker was down) are taken here
        overdue = max(2.0, 2 * self.settings.deferred_poll_interval.total_seconds())
        rows = self.store.sweep.claim_unannounced(overdue)
        if rows:
            self._announce(rows)
        return len(rows)

    def _republish_stale(self) -> int:
        after = self.settings.republish_after.total_seconds()
        places = self.store.sweep.stale_places(after)
        if not places:
            return 0
        # each (level, named queue) is its own RabbitMQ queue, with its own head
        by_place: dict[QueuePlace, list[int]] = {}
        for queue, priority in places:
            level = level_for(priority, self.settings.priority_map)
            by_place.setdefault((level, queue), []).append(priority)
        depths = self.runtime.publisher.queue_depths(list(by_place))
        republished = 0
        for place, place_priorities in by_place.items():
            before = self._announced_before_head(place, depths[place])
            if isinstance(before, _Skip):
                continue
            rows = self.store.sweep.claim_stale(
                place_priorities, after, announced_before=before, queue=place[1]
            )
            if rows:
                self._announce(rows)
            republished += len(rows)
        return republished

    def _announced_before_head(self, place: QueuePlace, depth: int) -> datetime | _Skip | None:
        """Rows announced before this instant have lost their message (None: any row, the
        queue is empty); SKIP when the head cannot tell this time."""
        if depth == 0:
            return None
        body = self.runtime.publisher.peek_head(*place)
        if body is None:
            return None  # emptied meanwhile
        try:
            note = decode_notification(body)
        except MalformedNotificationError:
            return SKIP  # a worker drops it soon; the next head tells
        head = self.store.admin.get(note.job_id)
        if (
            head is None
            or head.released_at is None
            or head.locked_by is not None
            or head.digest != note.digest
        ):
            return SKIP  # a leftover duplicate: its row has moved on
        return head.released_at - ORDER_MARGIN
