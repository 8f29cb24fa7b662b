"""WorkContext: the fresh per-job state that flows through the worker stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tomqueue.job import Job
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import LockResult
from tomqueue.wire import Notification


class Delivery(Protocol):
    """A message taken from RabbitMQ, settled exactly once from any thread."""

    body: bytes
    redelivered: bool

    def ack(self) -> None: ...

    def nack(self, requeue: bool) -> None: ...

    def mark_locked(self) -> None: ...


@dataclass
class WorkContext:
    """Everything one job's trip through the stack learns; nothing survives the trip.

    ``locked_by`` names this attempt ("host pid:1 key:2 run:3"): it is what the row's lock
    says while this attempt holds it, and what the delete or failure write must match.
    """

    worker_name: str
    lease_key: int
    locked_by: str = ""
    delivery: Delivery | None = None
    notification: Notification | None = None
    lock: LockResult | None = None
    job: Job | None = None
    error: BaseException | None = None
    error_text: str | None = None
    timed_out: bool = False
    detail: str = ""
    locked_monotonic: float = 0.0
    wake_deferred: JobSnapshot | None = None  # a row the deferred manager must hold now

    def __post_init__(self) -> None:
        if not self.locked_by:
            self.locked_by = self.worker_name

    @property
    def job_id(self) -> int | None:
        return self.notification.job_id if self.notification else None

    def log_extra(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "job_class": type(self.job).class_name() if self.job else None,
            "attempt": (self.lock.row.attempts + 1) if self.lock and self.lock.row else None,
            "worker": self.worker_name,
        }
