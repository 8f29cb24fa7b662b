"""EnqueueContext: the per-call state that flows through the enqueue stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from tomqueue.job import Job
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import NewJob

if TYPE_CHECKING:
    from tomqueue.enqueue.caller import CallerTransaction
    from tomqueue.ports import EnqueueRuntime


@dataclass
class EnqueueContext:
    """Jobs to enqueue and the options given; layers fill in rows as they go.

    ``app`` is the App running the stack, as the layers see it (``EnqueueRuntime``): its
    settings, its enqueue store, its publisher and announcer.
    """

    jobs: list[Job]
    app: EnqueueRuntime
    priority: int | None = None
    run_at: datetime | None = None
    queue: str | None = None
    session: Session | None = None
    # a transaction that is not SQLAlchemy's (tomqueue.enqueue.caller), instead of session
    caller: CallerTransaction | None = None
    wait_for_broker: bool = False
    new_jobs: list[NewJob] = field(default_factory=list)
    # the rows written (a unique job whose twin waits writes none); announced after commit
    rows: list[JobSnapshot] = field(default_factory=list)
    # one id per job given, in order: its row's, or its waiting twin's (Persist sets it)
    job_ids: list[int] | None = None

    @property
    def ids(self) -> list[int]:
        return self.job_ids if self.job_ids is not None else [row.id for row in self.rows]
