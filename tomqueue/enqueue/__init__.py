"""Enqueueing: the public functions, which go through the default app's enqueue stack."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from tomqueue.default_app import default_app
from tomqueue.job import Job

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def enqueue_many(
    jobs: Iterable[Job],
    priority: int | None = None,
    run_at: datetime | None = None,
    queue: str | None = None,
    session: Session | None = None,
    wait_for_broker: bool | None = None,
) -> list[int]:
    """Enqueue several jobs in one transaction; returns their ids in the order given.

    The ids come back once the rows are committed; RabbitMQ is told in the background
    unless ``wait_for_broker`` (default: the ``wait_for_broker`` setting) asks to wait for
    its confirm. Either way a job whose announcement fails still runs (the sweep heals it).
    """
    return default_app().enqueue_many(
        jobs,
        priority=priority,
        run_at=run_at,
        queue=queue,
        session=session,
        wait_for_broker=wait_for_broker,
    )


def enqueue(
    job: Job,
    priority: int | None = None,
    run_at: datetime | None = None,
    queue: str | None = None,
    session: Session | None = None,
    wait_for_broker: bool | None = None,
) -> int:
    """Enqueue one job; returns its id once the row is committed (or written to ``session``)."""
    return enqueue_many(
        [job],
        priority=priority,
        run_at=run_at,
        queue=queue,
        session=session,
        wait_for_broker=wait_for_broker,
    )[0]
