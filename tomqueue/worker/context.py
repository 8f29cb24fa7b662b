"""WorkContext: the fresh per-job state that flows through the worker stack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tomqueue.job import Job
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import LockResult
from tomqueue.wire import Notification
from tomqueue.worker.ports import Delivery


class LayerOrderError(RuntimeError):
    """A layer asked for what an earlier stage had not produced: the stack is misbuilt."""


@dataclass
class WorkContext:
    """Everything one job's trip through the stack learns; nothing survives the trip.

    Each stage's result has a typed accessor that is never None: ``notification`` (set
    by Pop), ``lock`` (by LockJob), ``job`` (by LockJob, once the row is locked). Asking
    for one before its stage ran raises LayerOrderError naming it, which only an edited
    stack with a layer in the wrong place can do.

    ``locked_by`` names this attempt ("host pid:1 key:2 run:3"): it is what the row's lock
    says while this attempt holds it, and what the delete or failure write must match.
    """

    worker_name: str
    lease_key: int
    locked_by: str = ""
    delivery: Delivery | None = None
    error_text: str | None = None  # why the attempt failed, for last_error
    error: BaseException | None = None  # what failed it, for observers (error reports)
    timed_out: bool = False  # the attempt overran max_run_time (Timeout)
    locked_monotonic: float = 0.0
    wake_deferred: JobSnapshot | None = None  # a row the deferred manager must hold now
    # how to leave the gates this job passed (tomqueue.worker.gates), innermost last:
    # LockJob calls them once the job's outcome is written
    gate_exits: list[Callable[[], None]] = field(default_factory=list)
    _notification: Notification | None = None
    _lock: LockResult | None = None
    _job: Job | None = None

    def __post_init__(self) -> None:
        if not self.locked_by:
            self.locked_by = self.worker_name

    @property
    def notification(self) -> Notification:
        if self._notification is None:
            raise LayerOrderError("no notification yet: this layer must run inside Pop")
        return self._notification

    @notification.setter
    def notification(self, value: Notification) -> None:
        self._notification = value

    @property
    def lock(self) -> LockResult:
        if self._lock is None:
            raise LayerOrderError("the row is not locked yet: this layer must run inside LockJob")
        return self._lock

    @lock.setter
    def lock(self, value: LockResult) -> None:
        self._lock = value

    @property
    def job(self) -> Job:
        if self._job is None:
            raise LayerOrderError("no job yet: this layer must run inside LockJob")
        return self._job

    @job.setter
    def job(self, value: Job) -> None:
        self._job = value

    @property
    def locked_row(self) -> JobSnapshot | None:
        """The row as LockJob read it, if it got that far (observers ask)."""
        return self._lock.row if self._lock else None

    @property
    def built_job(self) -> Job | None:
        """The job object, if LockJob built one (observers ask)."""
        return self._job

    @property
    def job_id(self) -> int | None:
        return self._notification.job_id if self._notification else None

    def log_extra(self) -> dict[str, object]:
        row = self._lock.row if self._lock else None
        return {
            "job_id": self.job_id,
            "job_class": type(self._job).class_name() if self._job else None,
            "attempt": row.attempts + 1 if row else None,
            "worker": self.worker_name,
        }
