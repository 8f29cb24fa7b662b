"""Fakes for the ports in ``tomqueue.ports``: an in-memory job store and a recording
publisher and announcer, for unit tests of layers (tomqueue's own, and yours).

- ``InMemoryJobStore`` implements ``WorkerStorePort``, ``EnqueueStorePort`` and
  ``GateStorePort`` over a dict
  of ``JobSnapshot`` values. It re-implements no decision: whether a notification runs,
  is dropped or is deferred is ``tomqueue.admission.admit``, what a failed attempt writes
  is ``tomqueue.plans.plan_failure``, the digest is ``tomqueue.snapshot.row_digest`` and
  the stored error text is ``tomqueue.error_text.storable``, exactly as the real store
  uses them. What is left here is carrying the plan out on a dict, and
  ``tests/contract/`` runs the same tests against this fake and against PostgreSQL, so
  the two cannot drift apart unnoticed.
- ``RecordingPublisher`` (``PublisherPort``) and ``RecordingAnnouncer``
  (``AnnouncerPort``) keep what they were given, and the publisher can be made to fail
  like a broker that is down.

Every fake is thread-safe (one lock each): worker slots are threads.

Where the fake store differs from PostgreSQL, on purpose:

- there are no transactions: ``insert(conn, ...)`` writes at once whatever ``conn`` is
  (the enqueue stack's "publish only after the caller's commit" is the job of
  ``PublishAfterCommit`` and the caller's SQLAlchemy session, not of the store);
- the clock is ``now`` (the host's UTC clock unless given), standing in for the
  database's ``now()``;
- a worker's lease is alive while ``hold_lease(key)`` holds it, standing in for the
  worker's advisory lock: a row locked under a lease not held counts as orphaned;
- a gate's slot belongs to the thread that took it (standing in for its connection), and
  ``drop_slots(thread_id)`` frees a dead holder's slots.

For tests that need the real pipeline rather than fakes, see ``tomqueue.testing``.

Example::

    store = InMemoryJobStore()
    [row] = store.insert_committed([NewJob(handler, priority=0, run_at=None, queue=None)])
    lock = LockJob(store, Settings(), should_stop=lambda: False)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tomqueue.admission import Admission, admit
from tomqueue.error_text import storable
from tomqueue.gates import SERIAL_PREFIX, Gate
from tomqueue.job_status import HistoryFacts, JobRowFacts, JobStatus, derive_state
from tomqueue.plans import plan_failure
from tomqueue.progress import StatusReport
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import DEFAULT_STATUS_TTL, Ended, LockResult, NewJob
from tomqueue.wire import Notification


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HistoryRecord:
    """The fake's row of ``tomqueue_job_history``: what ``status()`` reads."""

    class_name: str | None = None
    outcome: str | None = None
    value: int | None = None
    total: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None

    def take(self, report: StatusReport | None) -> None:
        if report is not None:
            self.value = report.value if report.value is not None else self.value
            self.total = report.total if report.total is not None else self.total
            self.fields = dict(report.fields) if report.fields is not None else self.fields


class InMemoryJobStore:
    """The worker's, the gates' and enqueue's store over a dict of rows
    (``WorkerStorePort``, ``GateStorePort``, ``EnqueueStorePort``), plus helpers for tests
    to look at and change rows."""

    def __init__(self, now: Callable[[], datetime] = _utc_now) -> None:
        self.now = now
        self._rows: dict[int, JobSnapshot] = {}
        self._next_id = 1
        self._leases: set[int] = set()
        self.history: dict[int, HistoryRecord] = {}
        self._slots: dict[tuple[int, int], int] = {}  # (space, slot) -> holding thread
        self._lock = threading.RLock()

    # -- EnqueueStorePort -------------------------------------------------------------------

    def insert(self, conn: object, new_jobs: Sequence[NewJob]) -> list[JobSnapshot]:
        """As ``insert_committed``: the fake has no transactions, so ``conn`` is ignored."""
        return self._insert(new_jobs)

    def insert_committed(self, new_jobs: Sequence[NewJob]) -> list[JobSnapshot]:
        """New rows in the order given, ids ascending; a due row is marked announced now,
        a future one waits for the deferred manager (``released_at`` None)."""
        return self._insert(new_jobs)

    def waiting_twins(self, conn: object, keys: Sequence[str]) -> dict[str, int]:
        """The ids of waiting (not failed, not locked) jobs with these unique keys."""
        with self._lock:
            return self._waiting_keys(set(keys))

    def _waiting_keys(self, keys: set[str] | None = None) -> dict[str, int]:
        return {
            row.unique_key: row.id
            for row in self._rows.values()
            if row.unique_key is not None
            and (keys is None or row.unique_key in keys)
            and row.failed_at is None
            and row.locked_at is None
        }

    def _kept_key(self, row: JobSnapshot) -> str | None:
        """A row going back to waiting keeps its unique key unless a twin waits with it
        (``statements.keep_unique_key``)."""
        if row.unique_key is None:
            return None
        twin = self._waiting_keys({row.unique_key}).get(row.unique_key)
        return row.unique_key if twin in (None, row.id) else None

    def _insert(self, new_jobs: Sequence[NewJob]) -> list[JobSnapshot]:
        """As the unique index does: a unique job whose twin waits is not written."""
        with self._lock:
            now = self.now()
            rows = []
            waiting = self._waiting_keys()
            keyed = {row.serial_key for row in self._rows.values() if row.serial_key}
            for new in new_jobs:
                if new.unique_key is not None and new.unique_key in waiting:
                    continue
                run_at = new.run_at if new.run_at is not None else now
                # as INSERT_JOBS: due behind another job of its key, it is written parked
                parked = new.serial_key in keyed and run_at <= now
                row = JobSnapshot(
                    id=self._next_id,
                    priority=new.priority,
                    attempts=0,
                    handler=new.handler,
                    last_error=None,
                    run_at=run_at,
                    locked_at=None,
                    locked_by=None,
                    failed_at=None,
                    queue=new.queue,
                    created_at=now,
                    updated_at=now,
                    released_at=now if run_at <= now else None,
                    unique_key=new.unique_key,
                    serial_key=new.serial_key,
                    trace_context=new.trace_context,
                    parked_on=SERIAL_PREFIX + new.serial_key if parked and new.serial_key else None,
                )
                if new.serial_key is not None:
                    keyed.add(new.serial_key)
                self._rows[row.id] = row
                self._next_id += 1
                rows.append(row)
                if new.unique_key is not None:
                    waiting[new.unique_key] = row.id
            return rows

    def unrelease(self, ids: Sequence[int]) -> None:
        """Hand pending rows back to the deferred manager (``released_at`` None)."""
        with self._lock:
            for job_id in ids:
                row = self._rows.get(job_id)
                if row is not None and row.failed_at is None:
                    self._rows[job_id] = replace(row, released_at=None)

    # -- WorkerStorePort --------------------------------------------------------------------

    def lock_for_run(self, job_id: int, digest: str, locked_by: str, lease_key: int) -> LockResult:
        """Decide with ``admit`` and carry the decision out: lock a row that runs, hand a
        row not yet due back to the deferred manager, leave the rest alone."""
        with self._lock:
            now = self.now()
            row = self._rows.get(job_id)
            holder_alive = row is not None and row.lock_key in self._leases
            decision = admit(row, digest, now, holder_alive, own_lock=locked_by)
            if row is None:
                return LockResult(decision, None, now)
            if decision is Admission.DEFER:
                self._rows[job_id] = replace(row, released_at=None)
            elif decision.runs:
                locked = replace(
                    row, locked_at=now, locked_by=locked_by, lock_key=lease_key, updated_at=now
                )
                self._rows[job_id] = locked
                return LockResult(decision, locked, now)
            return LockResult(decision, row, now)  # the row as it was read

    def delete_succeeded(self, job_id: int, locked_by: str, ended: Ended | None = None) -> bool:
        """Delete a finished job, if this attempt still holds it; its history says
        'succeeded'."""
        with self._lock:
            row = self._rows.get(job_id)
            if row is None or row.locked_by != locked_by:
                return False
            del self._rows[job_id]
            self._end(job_id, "succeeded", ended or Ended())
            return True

    def _end(self, job_id: int, outcome: str, ended: Ended) -> None:
        record = self.history.setdefault(job_id, HistoryRecord())
        record.take(ended.report)
        record.class_name = ended.class_name
        record.outcome = outcome
        record.expires_at = self.now() + timedelta(seconds=ended.ttl_seconds)

    def write_status(
        self,
        job_id: int,
        locked_by: str,
        class_name: str,
        report: StatusReport,
        keep_seconds: float = DEFAULT_STATUS_TTL,
    ) -> bool:
        """Keep a running job's report, if this attempt holds the job."""
        with self._lock:
            row = self._rows.get(job_id)
            if row is None or row.locked_by != locked_by or row.failed_at is not None:
                return False
            record = self.history.setdefault(job_id, HistoryRecord())
            record.take(report)
            record.class_name = class_name
            record.outcome = None
            record.expires_at = self.now() + timedelta(seconds=keep_seconds)
            return True

    def status(self, job_id: int) -> JobStatus | None:
        """What ``tomqueue.status`` would say, by ``tomqueue.job_status.derive_state``."""
        with self._lock:
            row = self._rows.get(job_id)
            record = self.history.get(job_id)
            facts = (
                None
                if row is None
                else JobRowFacts(row.failed_at is not None, row.locked_by is not None)
            )
            expired = (
                record is not None
                and record.expires_at is not None
                and record.expires_at <= self.now()
            )
            history = None if record is None else HistoryFacts(record.outcome, expired)
            state = derive_state(facts, history)
            if state is None:
                return None
            if record is None:
                return JobStatus(job_id, state)
            return JobStatus(job_id, state, record.value, record.total, dict(record.fields))

    def record_failure(
        self,
        job_id: int,
        locked_by: str,
        attempts: int,
        last_error: str,
        run_at: datetime | None,
        ended: Ended | None = None,
    ) -> JobSnapshot | None:
        """Unlock after a failed attempt as ``plan_failure`` says: wait for ``run_at``, or
        fail for good if it is None (its history says 'failed'). None if this attempt does
        not hold the row."""
        plan = plan_failure(attempts, last_error, run_at)
        with self._lock:
            row = self._rows.get(job_id)
            if row is None or row.locked_by != locked_by:
                return None
            now = self.now()
            updated = replace(
                row,
                attempts=plan.attempts,
                last_error=plan.last_error,
                run_at=plan.run_at if plan.run_at is not None else row.run_at,
                failed_at=now if plan.fail_now else None,
                released_at=None,
                crashes=0,
                locked_at=None,
                locked_by=None,
                lock_key=None,
                updated_at=now,
                unique_key=self._kept_key(row),
            )
            self._rows[job_id] = updated
            if plan.fail_now:
                self._end(job_id, "failed", replace(ended or Ended(), report=None))
            return updated

    def fail_held(
        self, job_id: int, locked_by: str, last_error: str, ended: Ended | None = None
    ) -> JobSnapshot | None:
        """Fail a row this attempt holds for good, without running it."""
        with self._lock:
            row = self._rows.get(job_id)
            if row is None or row.locked_by != locked_by:
                return None
            now = self.now()
            failed = replace(
                row,
                last_error=storable(last_error),
                attempts=max(row.attempts, 1),
                failed_at=now,
                locked_at=None,
                locked_by=None,
                lock_key=None,
                updated_at=now,
            )
            self._rows[job_id] = failed
            self._end(job_id, "failed", replace(ended or Ended(), report=None))
            return failed

    def hand_back(self, job_id: int, locked_by: str) -> bool:
        """Unlock a held row unrun and leave it unannounced (another queue's job)."""
        with self._lock:
            row = self._rows.get(job_id)
            if row is None or row.locked_by != locked_by or row.failed_at is not None:
                return False
            self._rows[job_id] = replace(
                row,
                locked_at=None,
                locked_by=None,
                lock_key=None,
                released_at=None,
                updated_at=self.now(),
                unique_key=self._kept_key(row),
            )
            return True

    # -- gates (GateStorePort) ------------------------------------------------------------

    def take(self, gate: Gate) -> int | None:
        with self._lock:
            for slot in gate.slots:
                if (gate.space, slot) not in self._slots:
                    self._slots[(gate.space, slot)] = threading.get_ident()
                    return slot
            return None

    def take_turn(self, gate: Gate, job_id: int) -> tuple[bool, bool]:
        with self._lock:
            behind = any(
                row.serial_key == gate.serial_key and row.id < job_id for row in self._rows.values()
            )
            got = self.take(gate) is not None
            return got, behind

    def leave(self, gate: Gate, slot: int) -> None:
        with self._lock:
            if self._slots.get((gate.space, slot)) == threading.get_ident():
                del self._slots[(gate.space, slot)]

    def park(self, gate: Gate, job_id: int, locked_by: str) -> bool:
        with self._lock:
            row = self._rows.get(job_id)
            if row is None or row.locked_by != locked_by or row.failed_at is not None:
                return False
            now = self.now()
            self._rows[job_id] = replace(
                row,
                locked_at=None,
                locked_by=None,
                lock_key=None,
                parked_on=gate.name,
                released_at=now,
                updated_at=now,
                unique_key=self._kept_key(row),
            )
            return True

    def anyone_parked(self, gate: Gate) -> bool:
        with self._lock:
            return any(row.parked_on == gate.name for row in self._rows.values())

    def wake(self, gate: Gate, announce: bool = True) -> list[JobSnapshot]:
        with self._lock:
            held = sum((gate.space, slot) in self._slots for slot in gate.slots)
            parked = sorted(
                (row for row in self._rows.values() if row.parked_on == gate.name),
                key=lambda row: (row.priority, row.id),
            )
            if gate.serial_key is not None:
                head = min(
                    (row.id for row in self._rows.values() if row.serial_key == gate.serial_key),
                    default=None,
                )
                parked = [row for row in parked if row.id == head and held == 0]
            else:
                parked = parked[: max(gate.size - held, 0)]
            now = self.now()
            released = now if announce or gate.serial_key is None else None
            woken = [
                replace(row, parked_on=None, released_at=released, updated_at=now) for row in parked
            ]
            self._rows.update({row.id: row for row in woken})
            return woken

    def wake_held(self, gate: Gate) -> list[JobSnapshot]:
        with self._lock:
            head = min(
                (row for row in self._rows.values() if row.serial_key == gate.serial_key),
                key=lambda row: row.id,
                default=None,
            )
            if head is None or head.parked_on != gate.name:
                return []
            woken = replace(head, parked_on=None, released_at=None, updated_at=self.now())
            self._rows[woken.id] = woken
            return [woken]

    def drop_slots(self, thread_id: int | None = None) -> None:
        """The connection of thread ``thread_id`` (the caller's, if None) has gone: the
        slots it held are free."""
        holder_id = threading.get_ident() if thread_id is None else thread_id
        with self._lock:
            for key in [key for key, holder in self._slots.items() if holder == holder_id]:
                del self._slots[key]

    # -- for tests --------------------------------------------------------------------------

    def get(self, job_id: int) -> JobSnapshot | None:
        with self._lock:
            return self._rows.get(job_id)

    def jobs(self) -> list[JobSnapshot]:
        """Every row, in id order."""
        with self._lock:
            return [self._rows[job_id] for job_id in sorted(self._rows)]

    def edit(self, job_id: int, **changes: object) -> JobSnapshot:
        """Change a row by hand, as an operator's UPDATE would (``run_at``, ``crashes``...)."""
        with self._lock:
            row = replace(self._rows[job_id], **changes)  # type: ignore[arg-type]
            self._rows[job_id] = row
            return row

    def hold_lease(self, key: int) -> None:
        """The worker with lease ``key`` is alive from now on (its advisory lock is held)."""
        with self._lock:
            self._leases.add(key)

    def drop_lease(self, key: int) -> None:
        """The worker with lease ``key`` has died: rows it holds are orphaned."""
        with self._lock:
            self._leases.discard(key)


class RecordingPublisher:
    """A ``PublisherPort`` that keeps what it was asked to publish.

    Set ``publish_error`` or ``deferred_error`` to an exception (say
    ``tomqueue.errors.BrokerUnavailableError()``) to make the matching call raise it, as
    the real publisher does while RabbitMQ is down; nothing is recorded then.
    """

    def __init__(self) -> None:
        self.published: list[Notification] = []
        self.published_deferred: list[Notification] = []
        self.publish_error: BaseException | None = None
        self.deferred_error: BaseException | None = None
        self._lock = threading.Lock()

    def publish(self, notifications: Sequence[Notification]) -> None:
        with self._lock:
            if self.publish_error is not None:
                raise self.publish_error
            self.published.extend(notifications)

    def publish_deferred(self, notifications: Sequence[Notification]) -> None:
        with self._lock:
            if self.deferred_error is not None:
                raise self.deferred_error
            self.published_deferred.extend(notifications)


class RecordingAnnouncer:
    """An ``AnnouncerPort`` that keeps what it was given, due and deferred apart."""

    def __init__(self) -> None:
        self.submitted: list[Notification] = []
        self.submitted_deferred: list[Notification] = []
        self._lock = threading.Lock()

    def submit(self, notifications: Sequence[Notification], deferred: bool = False) -> None:
        with self._lock:
            (self.submitted_deferred if deferred else self.submitted).extend(notifications)


if TYPE_CHECKING:  # the fakes fit the ports (mypy checks these; nothing runs)
    from tomqueue.ports import AnnouncerPort, EnqueueStorePort, PublisherPort, WorkerStorePort

    _worker_store: WorkerStorePort = InMemoryJobStore()
    _enqueue_store: EnqueueStorePort = InMemoryJobStore()
    _publisher: PublisherPort = RecordingPublisher()
    _announcer: AnnouncerPort = RecordingAnnouncer()

__all__ = ["InMemoryJobStore", "RecordingAnnouncer", "RecordingPublisher"]
