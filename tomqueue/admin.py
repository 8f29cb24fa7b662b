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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tomqueue.app import App
from tomqueue.broker import BROKER_FAILURES
from tomqueue.database import MIGRATION_LOCK_KEY
from tomqueue.deferred.leadership import leader_key
from tomqueue.filters import DEFAULT_QUEUE, Filter, State, state_of
from tomqueue.job import PRIORITY_RANGE
from tomqueue.notifications import notification_for
from tomqueue.priority import LEVELS_IN_ORDER, PriorityLevel, level_for
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import JobStore
from tomqueue.store.values import ActionResult, BatchResult, Held, StateCounts, StatsRow

MAX_PAGE = 10_000
BATCH_SIZE = 500


class Result(StrEnum):
    """What an action on one job came to."""

    DONE = "done"
    NOT_FOUND = "not_found"  # no job with that id (done and deleted, or never there)
    RUNNING = "running"  # refused: a live worker is running it; nothing was changed


@dataclass(frozen=True)
class Outcome:
    """What an action on one job did."""

    job_id: int
    result: Result
    row: JobSnapshot | None = None  # as written; for a delete, as it was removed
    running_on: str | None = None  # the live worker that made the action refuse
    announced: bool = False  # its notification went out now
    broker_error: str | None = None  # RabbitMQ failed: the sweep announces it later

    @property
    def done(self) -> bool:
        return self.result is Result.DONE


@dataclass(frozen=True)
class BulkReport:
    """What a bulk action did to the jobs its filter matched when it started."""

    action: str
    where: Filter
    done: int = 0
    skipped: tuple[Held, ...] = ()  # running under a live worker: left alone
    unannounced: int = 0  # done, but RabbitMQ failed: the sweep announces them
    broker_error: str | None = None


@dataclass(frozen=True)
class RepublishReport:
    """What ``republish`` did."""

    sent: int  # due jobs announced again
    future: int  # future jobs handed back to the deferred manager


@dataclass(frozen=True)
class JobPage:
    """One keyset page: ``next_after`` is the ``after_id`` of the next page (None: last)."""

    jobs: tuple[JobSnapshot, ...]
    next_after: int | None
    at: datetime  # the database clock the states were judged by

    def state(self, row: JobSnapshot) -> State:
        return state_of(row, self.at)


@dataclass(frozen=True)
class Stats:
    """Counts by state, overall and by level, priority, named queue and class."""

    at: datetime
    totals: StateCounts
    oldest_queued_age: timedelta | None  # how long the longest-waiting due job has waited
    by_level: dict[str, StateCounts]
    by_priority: dict[int, StateCounts]
    by_queue: dict[str, StateCounts]  # jobs with no named queue under "default"
    by_class: dict[str, StateCounts]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counts by state at the top, then the groupings."""
        age = self.oldest_queued_age
        return {
            "at": self.at.isoformat(),
            **_counts_dict(self.totals),
            "oldest_queued_age_seconds": None if age is None else age.total_seconds(),
            "by_level": {k: _counts_dict(v) for k, v in self.by_level.items()},
            "by_priority": {str(k): _counts_dict(v) for k, v in self.by_priority.items()},
            "by_queue": {k: _counts_dict(v) for k, v in self.by_queue.items()},
            "by_class": {k: _counts_dict(v) for k, v in self.by_class.items()},
        }


@dataclass(frozen=True)
class RunningJob:
    """A job a worker holds now."""

    job_id: int
    class_name: str
    queue: str | None
    priority: int
    attempts: int
    locked_by: str
    locked_at: datetime
    running_for: timedelta


@dataclass(frozen=True)
class WorkerInfo:
    """A worker lease (its advisory lock), whether it lives, and what it runs now.

    A dead worker is listed while rows are still locked under its lease: the sweep takes
    them over once the orphan grace has passed.
    """

    key: int | None
    name: str
    alive: bool
    since: datetime | None = None  # when its lease session began (live ones)
    client_addr: str | None = None
    jobs: tuple[RunningJob, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "alive": self.alive,
            "since": None if self.since is None else self.since.isoformat(),
            "client_addr": self.client_addr,
            "jobs": [
                {
                    "id": job.job_id,
                    "class": job.class_name,
                    "queue": job.queue,
                    "priority": job.priority,
                    "attempts": job.attempts,
                    "locked_by": job.locked_by,
                    "locked_at": job.locked_at.isoformat(),
                    "running_seconds": job.running_for.total_seconds(),
                }
                for job in self.jobs
            ],
        }


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

    def show(self, job_id: int) -> dict[str, Any] | None:
        """Everything about one job as ``job_dict`` gives it (None: no such job)."""
        row = self._store.admin.get(job_id)
        if row is None:
            return None
        details = job_dict(row, self._store.admin.db_now())
        details["level"] = level_for(row.priority, self.app.settings.priority_map).value
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
        return _stats_from(rows, self.app.settings.priority_map)

    def workers(self) -> list[WorkerInfo]:
        """Every live worker lease, idle ones too, and every lease rows are locked under."""
        overview = self._store.overview
        not_workers = [leader_key(self.app.settings.prefix), MIGRATION_LOCK_KEY]
        leases = {lease.key: lease for lease in overview.leases(not_workers)}
        at, held = overview.held_rows()
        by_key: dict[int | None, list[RunningJob]] = {}
        names: dict[int | None, str] = {}
        alive: dict[int | None, bool] = {}
        for row in held:
            by_key.setdefault(row.lock_key, []).append(
                RunningJob(
                    row.job_id,
                    row.class_name,
                    row.queue,
                    row.priority,
                    row.attempts,
                    row.locked_by,
                    row.locked_at,
                    at - row.locked_at,
                )
            )
            names.setdefault(row.lock_key, worker_name(row.locked_by))
            alive[row.lock_key] = alive.get(row.lock_key, False) or row.alive
        keys = sorted(set(leases) | set(by_key), key=lambda k: (k is None, k or 0))
        workers = []
        for key in keys:
            lease = leases.get(key) if key is not None else None
            workers.append(
                WorkerInfo(
                    key=key,
                    name=names.get(key, f"key:{key}"),
                    alive=lease is not None or alive.get(key, False),
                    since=None if lease is None else lease.since,
                    client_addr=None if lease is None else lease.client_addr,
                    jobs=tuple(by_key.get(key, ())),
                )
            )
        return workers

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


def worker_name(locked_by: str) -> str:
    """The worker part of an attempt's name: ``host pid:1 key:2`` of ``... key:2 run:3``."""
    head, sep, tail = locked_by.rpartition(" run:")
    return head if sep and tail.isdigit() else locked_by


def job_dict(row: JobSnapshot, at: datetime) -> dict[str, Any]:
    """Everything about one job, JSON-ready (``tomqueue show --json``, ``jobs --json``)."""

    def moment(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": row.id,
        "class": row.class_name,
        "state": state_of(row, at).value,
        "queue": row.queue,
        "priority": row.priority,
        "attempts": row.attempts,
        "crashes": row.crashes,
        "run_at": moment(row.run_at),
        "created_at": moment(row.created_at),
        "updated_at": moment(row.updated_at),
        "locked_at": moment(row.locked_at),
        "locked_by": row.locked_by,
        "failed_at": moment(row.failed_at),
        "released_at": moment(row.released_at),
        "last_error": row.last_error,
        "handler": row.handler,
    }


def _outcome(job_id: int, result: ActionResult) -> Outcome:
    if result.running_on is not None:
        return Outcome(job_id, Result.RUNNING, running_on=result.running_on)
    if result.row is None:
        return Outcome(job_id, Result.NOT_FOUND)
    return Outcome(job_id, Result.DONE, result.row)


def _counts_dict(counts: StateCounts) -> dict[str, int]:
    return {
        "queued": counts.queued,
        "scheduled": counts.scheduled,
        "running": counts.running,
        "failed": counts.failed,
        "total": counts.total,
    }


def _add(a: StateCounts, b: StateCounts) -> StateCounts:
    return StateCounts(
        a.queued + b.queued, a.scheduled + b.scheduled, a.running + b.running, a.failed + b.failed
    )


def _stats_from(rows: Iterable[StatsRow], priority_map: Mapping[int, PriorityLevel]) -> Stats:
    totals = StateCounts()
    oldest: datetime | None = None
    at: datetime | None = None
    by_priority: dict[int, StateCounts] = {}
    by_queue: dict[str, StateCounts] = {}
    by_class: dict[str, StateCounts] = {}
    for row in rows:
        if row.group == "total":
            totals, oldest, at = row.counts, row.oldest_queued_run_at, row.db_now
        elif row.group == "priority" and isinstance(row.key, int):
            by_priority[row.key] = row.counts
        elif row.group == "queue":
            # no named queue and a queue named "default" are one queue to a worker
            queue = DEFAULT_QUEUE if row.key is None else str(row.key)
            by_queue[queue] = _add(by_queue.get(queue, StateCounts()), row.counts)
        elif row.group == "class":
            by_class[str(row.key)] = row.counts
    by_level = {level.value: StateCounts() for level in LEVELS_IN_ORDER}
    for priority, counts in by_priority.items():
        level = level_for(priority, priority_map).value
        by_level[level] = _add(by_level[level], counts)
    assert at is not None, "STATS always has its overall row"
    return Stats(
        at=at,
        totals=totals,
        oldest_queued_age=None if oldest is None else max(at - oldest, timedelta(0)),
        by_level=by_level,
        by_priority=dict(sorted(by_priority.items())),
        by_queue=dict(sorted(by_queue.items())),
        by_class=dict(sorted(by_class.items())),
    )
