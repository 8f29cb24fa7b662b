"""Enqueueing: the public functions and the default enqueue stack."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from tomqueue.enqueue.context import EnqueueContext
from tomqueue.enqueue.layers import Persist, PublishAfterCommit, Validate
from tomqueue.job import Job
from tomqueue.middleware import Chain
from tomqueue.runtime import get_runtime

EnqueueStack = Chain[EnqueueContext, list[int]]


def default_enqueue_stack() -> EnqueueStack:
    """The layers every enqueue passes through, outermost first."""
    return Chain([Validate(), Persist(), PublishAfterCommit()])


enqueue_stack: EnqueueStack = default_enqueue_stack()


def _done(ctx: EnqueueContext) -> list[int]:
    return ctx.ids


def enqueue_many(
    jobs: Iterable[Job],
    priority: int | None = None,
    run_at: datetime | None = None,
    queue: str | None = None,
    session: Session | None = None,
) -> list[int]:
    """Enqueue several jobs in one transaction; returns their ids in the order given."""
    ctx = EnqueueContext(
        jobs=list(jobs),
        runtime=get_runtime(),
        priority=priority,
        run_at=run_at,
        queue=queue,
        session=session,
    )
    return enqueue_stack.invoke(ctx, _done)


def enqueue(
    job: Job,
    priority: int | None = None,
    run_at: datetime | None = None,
    queue: str | None = None,
    session: Session | None = None,
) -> int:
    """Enqueue one job; returns its id once the row is committed (or written to ``session``)."""
    return enqueue_many([job], priority=priority, run_at=run_at, queue=queue, session=session)[0]
