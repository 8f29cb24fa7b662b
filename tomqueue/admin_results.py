"""What the admin service returns: outcomes, reports, pages, stats and workers.

Plain values, and the pure functions that build them from what the store read
(``stats_from``, ``workers_from``, ``job_dict``), unit-tested without servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tomqueue.filters import DEFAULT_QUEUE, Filter, State, state_of
from tomqueue.priority import LEVELS_IN_ORDER, PriorityLevel, level_for
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import Held, HeldRow, Lease, StateCounts, StatsRow, ThroughputRow

# the origin the database's date_bin buckets are aligned to (statements.THROUGHPUT)
BUCKET_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


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

    @property
    def host(self) -> str | None:
        """The host the worker runs on, from its name (``host pid:N key:K``); None when
        only its key is known."""
        head, sep, _ = self.name.rpartition(" pid:")
        return head if sep and head else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "host": self.host,
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


@dataclass(frozen=True)
class Throughput:
    """Jobs that ended per time bucket over a trailing window, every bucket present."""

    at: datetime  # the database clock at the read
    bucket: timedelta
    points: tuple[ThroughputRow, ...]  # oldest first; a bucket with no jobs counts 0

    @property
    def succeeded(self) -> int:
        return sum(point.succeeded for point in self.points)

    @property
    def failed(self) -> int:
        return sum(point.failed for point in self.points)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "bucket_seconds": self.bucket.total_seconds(),
            "succeeded": self.succeeded,
            "failed": self.failed,
            "points": [
                {"at": p.bucket.isoformat(), "succeeded": p.succeeded, "failed": p.failed}
                for p in self.points
            ],
        }


@dataclass(frozen=True)
class QueueInfo:
    """One RabbitMQ queue of this prefix: ready messages and consumers attached now."""

    name: str
    level: str | None  # the priority level it serves; None for the deferred queue
    ready: int  # messages waiting (not those delivered and unacked)
    consumers: int
    queue: str = "default"  # the named queue whose level it is ("default": no name)


@dataclass(frozen=True)
class DeferredInfo:
    """The deferred managers: the leader's lease if one is held (standbys hold none)."""

    leader: Lease | None


def bucket_start(moment: datetime, bucket: timedelta) -> datetime:
    """The start of the bucket ``moment`` falls in, as the database's date_bin gives it."""
    steps = (moment - BUCKET_ORIGIN) // bucket
    return BUCKET_ORIGIN + steps * bucket


def throughput_from(
    rows: Iterable[ThroughputRow], at: datetime, window: timedelta, bucket: timedelta
) -> Throughput:
    """Every bucket from the one holding ``at - window`` to the one holding ``at``, with
    the counts the database gave and zero where it gave none."""
    if bucket <= timedelta(0) or window < bucket:
        raise ValueError("the bucket must be positive and no longer than the window")
    counted = {row.bucket: row for row in rows}
    start, last = bucket_start(at - window, bucket), bucket_start(at, bucket)
    points = []
    moment = start
    while moment <= last:
        points.append(counted.get(moment, ThroughputRow(moment, 0, 0)))
        moment += bucket
    return Throughput(at, bucket, tuple(points))


def _lease_name(lease: Lease | None, key: int | None) -> str:
    """An idle worker's name, as its lease session calls itself (``key:K`` if it can't)."""
    if lease is not None and lease.session_name and lease.session_name.endswith(f" key:{key}"):
        return lease.session_name
    return f"key:{key}"


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
        "serial_key": row.serial_key,
        # the gate it waits at for a slot of its class or its serial key's turn
        "parked_on": row.parked_on,
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


def workers_from(
    leases: Mapping[int, Lease], held: Iterable[HeldRow], at: datetime
) -> list[WorkerInfo]:
    """The workers: every live lease, idle or not, and every lease rows are locked under
    (a dead one's until the sweep takes its rows over), with what each runs at ``at``."""
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
                name=names.get(key) or _lease_name(lease, key),
                alive=lease is not None or alive.get(key, False),
                since=None if lease is None else lease.since,
                client_addr=None if lease is None else lease.client_addr,
                jobs=tuple(by_key.get(key, ())),
            )
        )
    return workers


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


def stats_from(rows: Iterable[StatsRow], priority_map: Mapping[int, PriorityLevel]) -> Stats:
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


@dataclass(frozen=True)
class CronInfo:
    """One cron schedule: when it last enqueued a job (and which), and when it fires next."""

    name: str
    expression: str
    timezone: str
    last_fire: datetime | None
    last_job_id: int | None
    next_fire: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cron": self.expression,
            "timezone": self.timezone,
            "last_fire": self.last_fire.isoformat() if self.last_fire else None,
            "last_job_id": self.last_job_id,
            "next_fire": self.next_fire.isoformat(),
        }
