"""The ports: what the enqueue and worker stacks need from the store, the broker and the
announcer, as Protocols, so the real parts and the fakes in ``tomqueue.fakes`` both fit.

- ``WorkerStorePort``: ``app.store.worker`` (``tomqueue.store.WorkerStore``); fake:
  ``InMemoryJobStore``.
- ``EnqueueStorePort``: ``app.store.enqueue`` (``tomqueue.store.EnqueueStore``); fake:
  ``InMemoryJobStore``.
- ``GateStorePort``: ``app.store.gates`` (``tomqueue.store.GateStore``); fake:
  ``InMemoryJobStore``.
- ``PublisherPort``: ``app.publisher`` (``tomqueue.broker.Publisher``); fake:
  ``RecordingPublisher``.
- ``AnnouncerPort``: ``app.announcer`` (``tomqueue.announcer.Announcer``); fake:
  ``RecordingAnnouncer``.
- ``EnqueueRuntime``: ``tomqueue.App`` itself, as the enqueue stack sees it.

The worker stack's message ports (``Delivery``, ``DeliverySource``, ``LeaseGate``) live in
``tomqueue.worker.ports``. One contract suite (``tests/contract/``) runs the same tests
against the fake store and the real one, so the two cannot drift apart unnoticed.

Importing this module loads no database or broker driver: the types it names are imported
for the type checker only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from tomqueue.enqueue.caller import CallerTransaction
    from tomqueue.gates import Gate
    from tomqueue.progress import StatusReport
    from tomqueue.settings import Settings
    from tomqueue.snapshot import JobSnapshot
    from tomqueue.store.values import Ended, LockResult, NewJob
    from tomqueue.wire import Notification


class WorkerStorePort(Protocol):
    """The worker's writes per job (LockJob): lock, then delete or record the outcome.

    ``locked_by`` names one attempt; every write after the lock matches it, so an attempt
    whose row was taken over can never delete or fail the row under the new holder. The
    writes that end a job (``delete_succeeded``, a failure for good) record its history
    row as well (``Ended`` says what to add); ``write_status`` upserts a running job's
    report.
    """

    def lock_for_run(
        self, job_id: int, digest: str, locked_by: str, lease_key: int
    ) -> LockResult: ...

    def delete_succeeded(self, job_id: int, locked_by: str, ended: Ended | None = None) -> bool: ...

    def record_failure(
        self,
        job_id: int,
        locked_by: str,
        attempts: int,
        last_error: str,
        run_at: datetime | None,
        ended: Ended | None = None,
    ) -> JobSnapshot | None: ...

    def fail_held(
        self, job_id: int, locked_by: str, last_error: str, ended: Ended | None = None
    ) -> JobSnapshot | None: ...

    def write_status(
        self,
        job_id: int,
        locked_by: str,
        class_name: str,
        report: StatusReport,
        keep_seconds: float = ...,
    ) -> bool: ...

    def hand_back(self, job_id: int, locked_by: str) -> bool: ...


class GateStorePort(Protocol):
    """The worker's gates (``tomqueue.gates``): concurrency limits and serial keys.

    ``take``, ``take_turn`` and ``leave`` belong to the calling thread: a slot taken by a
    slot thread is held by it (by its own database connection) until it leaves.
    """

    def take(self, gate: Gate) -> int | None: ...

    def take_turn(self, gate: Gate, job_id: int) -> tuple[bool, bool]: ...

    def leave(self, gate: Gate, slot: int) -> None: ...

    def drop_slots(self) -> None: ...

    def park(self, gate: Gate, job_id: int, locked_by: str) -> bool: ...

    def anyone_parked(self, gate: Gate) -> bool: ...

    def wake(self, gate: Gate, announce: bool = True) -> list[JobSnapshot]: ...

    def wake_held(self, gate: Gate) -> list[JobSnapshot]: ...


class EnqueueStorePort(Protocol):
    """What Persist writes (rows come back in the order given, with their ids), and how a
    failed announcement hands rows back to the deferred manager."""

    def insert(
        self, conn: Connection | CallerTransaction, new_jobs: Sequence[NewJob]
    ) -> list[JobSnapshot]: ...

    def insert_committed(self, new_jobs: Sequence[NewJob]) -> list[JobSnapshot]: ...

    def waiting_twins(
        self, conn: Connection | CallerTransaction | None, keys: Sequence[str]
    ) -> dict[str, int]: ...

    def unrelease(self, ids: Sequence[int]) -> None: ...


class PublisherPort(Protocol):
    """Publishes notifications, returning once the broker confirmed them (or raising one
    of ``tomqueue.broker.BROKER_FAILURES``)."""

    def publish(self, notifications: Sequence[Notification]) -> None: ...

    def publish_deferred(self, notifications: Sequence[Notification]) -> None: ...


class AnnouncerPort(Protocol):
    """Takes notifications to publish in the background; never blocks on the broker."""

    def submit(self, notifications: Sequence[Notification], deferred: bool = False) -> None: ...


class EnqueueStores(Protocol):
    """The part of ``app.store`` the enqueue stack uses."""

    @property
    def enqueue(self) -> EnqueueStorePort: ...


class EnqueueRuntime(Protocol):
    """What the enqueue stack's layers use from the app that runs them (``ctx.app``).

    Looked up per call rather than given to each layer when it is built: an App builds its
    engine, publisher and announcer on first use, and its enqueue stack is built with it.
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> EnqueueStores: ...

    @property
    def publisher(self) -> PublisherPort: ...

    @property
    def announcer(self) -> AnnouncerPort: ...

    def ensure_prefix_bound(self) -> None: ...

    def leave_for_sweep(self, notes: Sequence[Notification]) -> None: ...
