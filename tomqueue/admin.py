"""Admin: the operators' service, which the CLI, the dashboard and user scripts all call.

Sidekiq's ``api.rb`` is the model: a small Python API over the jobs table that a person
can script, with the command line and the web pages as thin faces over it; neither
writes SQL. Actions work by id (``retry``, ``delete``, ``reschedule``, ``run_now``,
``change_priority``) or by ``Filter`` in batches (``retry_all``, ``delete_all``); reads
are keyset pages (``list_jobs``), ``count``, ``stats`` and ``workers``.

A job a live worker is running is never retried, deleted, rescheduled or run now from
under it: the action is refused (``Result.RUNNING``, or listed in ``BulkReport.skipped``)
and the row is left as it was. The rules are pure functions in ``tomqueue.plans``.

A row made due by an action is announced at once, after its transaction commits (the
notification carries the new row's digest, so it must not go out before). If RabbitMQ is
unreachable the row is marked unreleased instead, and the sweep or the deferred manager
announces it once the broker is back: the action stands either way.

What it returns (``Outcome``, ``BulkReport``, ``JobPage``, ``Stats``, ``WorkerInfo``) is in
``tomqueue.admin_results``, and importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from tomqueue.admin_results import (
    BulkReport,
    CronInfo,
    DeferredInfo,
    JobPage,
    Outcome,
    QueueInfo,
    RepublishReport,
    Result,
    RunningJob,
    Stats,
    Throughput,
    WorkerInfo,
    job_dict,
    stats_from,
    throughput_from,
    worker_name,
    workers_from,
)
from tomqueue.app import App
from tomqueue.broker import BROKER_FAILURES
from tomqueue.cron import schedule_of
from tomqueue.database import MIGRATION_LOCK_KEY
from tomqueue.deferred.leadership import leader_key
from tomqueue.filters import Filter, State
from tomqueue.job import PRIORITY_RANGE, Job
from tomqueue.notifications import notification_for
from tomqueue.priority import LEVELS_IN_ORDER, level_for
from tomqueue.queues import shown_queue
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import JobStore
from tomqueue.store.values import ActionResult, BatchResult, Held

__all__ = [
    "Admin",
    "BulkReport",
    "CronInfo",
    "DeferredInfo",
    "Filter",
    "JobPage",
    "Outcome",
    "QueueInfo",
    "RepublishReport",
    "Result",
    "RunningJob",
    "State",
    "Stats",
    "Throughput",
    "WorkerInfo",
    "job_dict",
    "worker_name",
]

MAX_PAGE = 10_000
BATCH_SIZE = 500


class Admin:
    """The operators' service over one App (the process's default App if none is given)."""

    def __init__(self, app: App | None = None) -> None:
        if app is None:
            from tomqueue.default_app import default_app

            app = default_app()
        self.app = app

    @property
    def _store(self) -> JobStore:
        # the jobs of another prefix are not ours to touch (tomqueue/prefix_binding.py)
        self.app.ensure_prefix_bound()
        return self.app.store

    # -- reading ---------------------------------------------------------------------------

    def get(self, job_id: int) -> JobSnapshot | None:
        return self._store.admin.get(job_id)

    def db_now(self) -> datetime:
        """The database's clock, by which job states are judged."""
        return self._store.admin.db_now()

    def show(self, job_id: int) -> dict[str, Any] | None:
        """Everything about one job as ``job_dict`` gives it (None: no such job)."""
        row = self._store.admin.get(job_id)
        if row is None:
            return None
        details = job_dict(row, self._store.admin.db_now())
        details["level"] = level_for(row.priority, self.app.settings.priority_map).value
        status = self.app.status(job_id)  # state, progress and fields the job reported
        details["status"] = None if status is None else status.to_dict()
        return details

    def list_jobs(
        self, where: Filter | None = None, after_id: int | None = None, limit: int = 100
    ) -> JobPage:
        """Up to ``limit`` jobs matching ``where`` with ids above ``after_id``, by id."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        at, rows = self._store.overview.page(where or Filter(), after_id or 0, limit + 1)
        more = len(rows) > limit
        jobs = tuple(rows[:limit])
        return JobPage(jobs, jobs[-1].id if more else None, at)

    def count(self, where: Filter | None = None) -> int:
        """How many jobs match (a scan: for a person who asks, not every page view)."""
        return self._store.overview.count(where or Filter())

    def stats(self) -> Stats:
        rows = self._store.overview.stats()
        return stats_from(rows, self.app.settings.priority_map)

    def workers(self) -> list[WorkerInfo]:
        """Every live worker lease, idle ones too, and every lease rows are locked under."""
        overview = self._store.overview
        not_workers = [leader_key(self.app.settings.prefix), MIGRATION_LOCK_KEY]
        leases = {lease.key: lease for lease in overview.leases(not_workers)}
        at, held = overview.held_rows()
        return workers_from(leases, held, at)

    def deferred(self) -> DeferredInfo:
        """The deferred managers: whose is the leader's lease now (None: no leader)."""
        leases = self._store.overview.leases_of([leader_key(self.app.settings.prefix)])
        return DeferredInfo(leases[0] if leases else None)

    def throughput(
        self, window: timedelta = timedelta(hours=1), bucket: timedelta = timedelta(minutes=1)
    ) -> Throughput:
        """Jobs that succeeded and failed for good per ``bucket`` over the last ``window``,
        from the history table (kept for TOMQUEUE_STATUS_TTL)."""
        at, rows = self._store.overview.throughput(window, bucket)
        return throughput_from(rows, at, window, bucket)

    def queues(self) -> list[QueueInfo]:
        """This prefix's RabbitMQ queues, live: the deferred manager's, then one per
        priority level of the default queue and of each named queue jobs are in. Raises
        BrokerUnavailableError when RabbitMQ cannot be asked."""
        topology = self.app.publisher.topology
        named = self._store.worker.named_queues()
        places: dict[str, tuple[str | None, str]] = {topology.deferred_queue: (None, "")}
        for queue in [None, *named]:
            for level in LEVELS_IN_ORDER:
                places[topology.queue_for(level, queue)] = (level.value, shown_queue(queue))
        counts = self.app.publisher.queue_info(list(places), named)
        return [
            QueueInfo(name, level, *counts[name], queue=queue)
            for name, (level, queue) in places.items()
        ]

    def cron(self, classes: Iterable[type[Job]]) -> list[CronInfo]:
        """The cron schedules of ``classes`` (those with a ``cron``), by name: the last fire
        time that enqueued a job, and the next, on the database's clock."""
        schedules = [s for s in (schedule_of(cls) for cls in classes) if s is not None]
        runs = self._store.cron.last_runs([s.name for s in schedules])
        now = self.db_now()
        return [
            CronInfo(
                s.name,
                s.expression,
                s.timezone,
                runs[s.name][0] if s.name in runs else None,
                runs[s.name][1] if s.name in runs else None,
                s.next_fire(now),
            )
            for s in sorted(schedules, key=lambda s: s.name)
        ]

    # -- acting on one job -----------------------------------------------------------------

    def retry(self, job_id: int) -> Outcome:
        """Make a job pending and due now with a fresh set of attempts, and announce it."""
        return self._announced(job_id, self._store.admin.retry(job_id))

    def delete(self, job_id: int) -> Outcome:
        """Delete a job (pending or failed)."""
        return _outcome(job_id, self._store.admin.delete_job(job_id))

    def reschedule(self, job_id: int, at: datetime | timedelta) -> Outcome:
        """Make a job run at ``at`` (timezone-aware), or ``at`` from now (a timedelta, on
        the database's clock). A failed job comes back with a fresh set of attempts. Due
        already: announced now; later: the deferred manager releases it on time."""
        return self._announced(job_id, self._store.admin.reschedule(job_id, at))

    def run_now(self, job_id: int) -> Outcome:
        """Make a job due now and announce it (a failed one gets fresh attempts)."""
        return self.reschedule(job_id, timedelta(0))

    def change_priority(self, job_id: int, priority: int) -> Outcome:
        """Give a job another priority. It may be running: its run goes on, and its next
        try has the new priority. A due job waiting for a worker is announced again."""
        if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise ValueError(f"priority must be a 32-bit integer, got {priority}")
        return self._announced(job_id, self._store.admin.change_priority(job_id, priority))

    # -- acting by filter, in batches ------------------------------------------------------

    def retry_all(self, where: Filter, batch_size: int = BATCH_SIZE) -> BulkReport:
        """Retry every job matching ``where`` (that exists now), a batch per transaction;
        each batch is announced once it has committed."""
        return self._bulk("retry", where, batch_size, self._store.admin.retry_batch)

    def delete_all(self, where: Filter, batch_size: int = BATCH_SIZE) -> BulkReport:
        """Delete every job matching ``where`` (that exists now), a batch per transaction."""
        return self._bulk("delete", where, batch_size, self._store.admin.delete_batch)

    def _bulk(
        self,
        action: str,
        where: Filter,
        batch_size: int,
        run_batch: Callable[[Filter, int, int, int], BatchResult],
    ) -> BulkReport:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        upto = self._store.admin.max_id()
        after, done, unannounced = 0, 0, 0
        skipped: list[Held] = []
        broker_error: str | None = None
        while True:
            batch = run_batch(where, after, upto, batch_size)
            if batch.last_id is None:
                break
            done += batch.done
            skipped.extend(batch.held)
            # the batch has committed: only now may its notifications go out, since each
            # carries the digest of the row as the batch wrote it
            error = self._announce(batch.rows)
            if error is not None:
                unannounced += len(batch.rows)
                broker_error = error
            after = batch.last_id
        return BulkReport(action, where, done, tuple(skipped), unannounced, broker_error)

    def republish(self) -> RepublishReport:
        """Re-send the notification of every pending, due, unlocked job, a batch at a time,
        and hand every future job back to the deferred manager. Always safe: a duplicate
        notification finds the row locked or changed. Raises BrokerUnavailableError (the
        batches announced so far stay announced)."""
        store = self._store
        sent = 0
        for batch in store.admin.iter_due_pending():
            notes = [notification_for(row, self.app.settings.priority_map) for row in batch]
            self.app.publisher.publish(notes)
            # marked only where run_at is still the announced one: a row rescheduled
            # meanwhile stays with the deferred manager
            store.admin.mark_republished([(row.id, row.run_at) for row in batch])
            sent += len(notes)
        return RepublishReport(sent, store.admin.unrelease_future())

    # -- announcing ------------------------------------------------------------------------

    def _announced(self, job_id: int, result: ActionResult) -> Outcome:
        outcome = _outcome(job_id, result)
        row = outcome.row
        # only a row the action marked released now is announced now (retry, run now, a
        # reschedule to now, a priority change of a due job); others wait as they are
        if row is None or not result.announce:
            return outcome
        error = self._announce([row])
        return Outcome(job_id, Result.DONE, row, announced=error is None, broker_error=error)

    def _announce(self, rows: Sequence[JobSnapshot]) -> str | None:
        """Publish the rows' notifications; on a broker failure hand them to the sweep
        and return what went wrong. (Called after the rows' transaction committed.)"""
        if not rows:
            return None
        notes = [notification_for(row, self.app.settings.priority_map) for row in rows]
        try:
            self.app.publisher.publish(notes)
        except BROKER_FAILURES as exc:
            self._store.enqueue.unrelease([row.id for row in rows])
            return str(exc)
        return None


def _outcome(job_id: int, result: ActionResult) -> Outcome:
    if result.running_on is not None:
        return Outcome(job_id, Result.RUNNING, running_on=result.running_on)
    if result.row is None:
        return Outcome(job_id, Result.NOT_FOUND)
    return Outcome(job_id, Result.DONE, result.row)
