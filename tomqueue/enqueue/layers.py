"""The enqueue stack's layers: Validate → Persist → PublishAfterCommit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tomqueue.broker import BROKER_FAILURES
from tomqueue.enqueue.after_commit import hold_until_commit
from tomqueue.enqueue.context import EnqueueContext
from tomqueue.enqueue.unique import resolve_ids
from tomqueue.handler import encode_handler
from tomqueue.job import Job, stored_serial_key, stored_unique_key
from tomqueue.notifications import notification_for
from tomqueue.queues import stored_queue
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import NewJob
from tomqueue.wire import Notification

if TYPE_CHECKING:
    from tomqueue.ports import EnqueueRuntime, EnqueueStorePort

log = logging.getLogger(__name__)

Next = Callable[[EnqueueContext], list[int]]


class Validate:
    """Refuse bad input before anything is written: non-jobs, non-JSON state, naive times."""

    def __call__(self, ctx: EnqueueContext, call_next: Next) -> list[int]:
        if ctx.run_at is not None and ctx.run_at.tzinfo is None:
            raise ValueError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
        queue = stored_queue(ctx.queue) if ctx.queue is not None else None
        for job in ctx.jobs:
            if not isinstance(job, Job):
                raise TypeError(f"expected a tomqueue.Job instance, got {type(job).__name__}")
            ctx.new_jobs.append(
                NewJob(
                    handler=encode_handler(job),  # raises TypeError naming the attribute
                    priority=ctx.priority if ctx.priority is not None else type(job).priority,
                    run_at=ctx.run_at,
                    queue=queue if ctx.queue is not None else stored_queue(type(job).queue_name),
                    unique_key=stored_unique_key(job),
                    serial_key=stored_serial_key(job),
                )
            )
        return call_next(ctx)


class Persist:
    """Write the rows: in the caller's session (or CallerTransaction) if given, else in a
    short transaction."""

    def __call__(self, ctx: EnqueueContext, call_next: Next) -> list[int]:
        if not ctx.new_jobs:
            return []
        ctx.app.ensure_prefix_bound()  # once per App: this prefix owns the database
        store = ctx.app.store.enqueue
        if ctx.session is not None and ctx.caller is not None:
            raise ValueError("enqueue takes a session or a caller transaction, not both")
        conn = ctx.session.connection() if ctx.session is not None else ctx.caller

        def write(new_jobs: Sequence[NewJob]) -> list[JobSnapshot]:
            if conn is not None:
                return store.insert(conn, new_jobs)
            return store.insert_committed(new_jobs)

        ctx.rows = write(ctx.new_jobs)
        if any(job.unique_key for job in ctx.new_jobs):
            ctx.job_ids = resolve_ids(
                ctx.new_jobs, ctx.rows, lambda keys: store.waiting_twins(conn, keys), write
            )
        return call_next(ctx)


class PublishAfterCommit:
    """Announce the rows once they are committed; a broker outage never loses them.

    Without a session the rows are already committed here. With one (or a caller
    transaction), publishing waits for that transaction's commit and is dropped on
    rollback. By default the announcement is
    handed to the app's Announcer thread and enqueue returns at once; with
    ``wait_for_broker`` it is published here, and enqueue returns once RabbitMQ confirmed.
    """

    def __call__(self, ctx: EnqueueContext, call_next: Next) -> list[int]:
        app, wait = ctx.app, ctx.wait_for_broker
        if ctx.session is not None:
            hold_until_commit(ctx.session, ctx.rows, lambda rows: announce(app, rows, wait))
        elif ctx.caller is not None:
            rows = ctx.rows
            ctx.caller.on_commit(lambda: announce(app, rows, wait))
        else:
            announce(app, ctx.rows, wait)
        return call_next(ctx)


def announce(app: EnqueueRuntime, rows: list[JobSnapshot], wait_for_broker: bool = False) -> None:
    """Publish due rows to their priority queue and wake the deferred manager for the rest.

    If RabbitMQ is down the rows stay committed: they are marked unreleased so the deferred
    manager (or any worker's sweep) announces them once the broker is back.
    """
    priority_map = app.settings.priority_map
    rows = [row for row in rows if row.parked_on is None]  # written waiting at a serial key
    due = [notification_for(row, priority_map) for row in rows if row.released_at is not None]
    future = [notification_for(row, priority_map) for row in rows if row.released_at is None]
    if not wait_for_broker:
        app.announcer.submit(due)
        app.announcer.submit(future, deferred=True)
        return
    try:
        app.publisher.publish(due)
    except BROKER_FAILURES as exc:
        log.warning("jobs are committed but were not announced (%s)", exc)
        app.leave_for_sweep(due)
        return
    try:
        app.publisher.publish_deferred(future)
    except BROKER_FAILURES as exc:
        log.warning(
            "could not wake the deferred manager for jobs %s (%s); it will find them on "
            "its next poll",
            [note.job_id for note in future],
            exc,
        )


def leave_for_sweep(store: EnqueueStorePort, notes: Sequence[Notification]) -> None:
    """Mark rows whose announcement failed unreleased: the deferred manager or any
    worker's sweep announces them once the broker is back. If even that write fails,
    the rows are still safe: the stale sweep republishes released rows nobody took."""
    ids = [note.job_id for note in notes]
    if not ids:
        return
    log.warning("jobs %s are committed but not announced; left for the sweep", ids)
    try:
        store.unrelease(ids)
    except Exception as exc:  # the row is safe either way: the stale sweep finds it
        log.warning("could not mark jobs %s unreleased (%s)", ids, exc)
