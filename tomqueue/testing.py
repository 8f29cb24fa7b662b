"""Helpers for applications' own tests, running the real pipeline rather than a fake.

- ``perform_now(job)`` runs one job in this thread with its hooks, in Delayed::Job order.
- ``enqueued(JobClass)`` lists the pending rows of a class (to assert a job was enqueued).
- ``work_off()`` runs a real worker in this process until no due job is left.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from tomqueue.default_app import default_app
from tomqueue.job import Job
from tomqueue.snapshot import JobSnapshot
from tomqueue.worker.context import WorkContext
from tomqueue.worker.layers import Invoke, perform
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.process import Worker


def perform_now(job: Job) -> Outcome:
    """Run ``job`` here and now with its hooks; SUCCEEDED or ATTEMPT_FAILED, never raises."""
    ctx = WorkContext(worker_name="tomqueue.testing", lease_key=0)
    ctx.job = job
    return Invoke()(ctx, perform)


def enqueued(job_class: type[Job] | None = None) -> list[JobSnapshot]:
    """Pending (not failed) rows, of ``job_class`` only if given, oldest first."""
    rows = [
        row for row in default_app().store.admin.list_jobs(limit=10_000) if row.failed_at is None
    ]
    if job_class is None:
        return rows
    return [row for row in rows if row.class_name == job_class.class_name()]


def work_off(timeout: float = 30.0, concurrency: int = 1) -> Counter[Outcome]:
    """Run a worker in this process until no due, pending job is left; returns the outcomes.

    Future jobs and retries wait for a deferred manager, as in production: they are not
    forced to run early.
    """
    runtime = default_app()
    worker = Worker(runtime, concurrency=concurrency)
    thread = threading.Thread(target=worker.run, name="tomqueue-testing-worker", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if _nothing_due(runtime.store.engine):
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"jobs still due after {timeout}s")
    finally:
        worker.stop()
        thread.join(timeout)
    return worker.outcomes


def _nothing_due(engine: object) -> bool:
    from sqlalchemy import Engine, text

    assert isinstance(engine, Engine)
    with engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM tomqueue_jobs WHERE failed_at IS NULL "
                "AND (run_at <= now() OR locked_by IS NOT NULL)"
            )
        ).scalar_one()
    return int(count) == 0
