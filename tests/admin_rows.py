"""Rows for the admin tests: inserted straight through the store (no broker), and rows
locked under a live worker lease (an advisory lock this test holds, as a worker would)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg

from tests.conftest import TestEnv, libpq
from tomqueue.database import ADVISORY_NAMESPACE
from tomqueue.default_app import default_app
from tomqueue.store.values import NewJob


def handler(class_name: str = "tests.jobs.Record", **state: object) -> str:
    return json.dumps({"class": class_name, "state": state or {"label": "x"}, "v": 1},
                      sort_keys=True, separators=(",", ":"))  # fmt: skip


def insert(
    count: int = 1,
    class_name: str = "tests.jobs.Record",
    priority: int = 0,
    run_at: datetime | None = None,
    queue: str | None = None,
    **state: object,
) -> list[int]:
    """Insert rows committed, unannounced by anyone (the store's own insert)."""
    new = NewJob(handler(class_name, **state), priority, run_at, queue)
    return [row.id for row in default_app().store.enqueue.insert_committed([new] * count)]


def fail(tq: TestEnv, *job_ids: int, error: str = "ValueError: boom") -> None:
    tq.sql(
        "UPDATE tomqueue_jobs SET failed_at = now(), attempts = 3, last_error = %s "
        "WHERE id = ANY(%s)",
        error,
        list(job_ids),
    )


@contextmanager
def live_lease(tq: TestEnv, *job_ids: int, key: int = 4242) -> Iterator[str]:
    """Hold a worker lease (key) and lock the rows under it; yields the worker's name.
    The lease dies when the block ends (its backend ends a moment after)."""
    name = f"testhost pid:1 key:{key}"
    with psycopg.connect(libpq(tq.database_url), autocommit=True) as lease:
        lease.execute("SELECT pg_advisory_lock(%s::int, %s::int)", (ADVISORY_NAMESPACE, key))
        lock(tq, name, key, *job_ids)
        yield name


def lock(tq: TestEnv, name: str, key: int, *job_ids: int) -> None:
    for job_id in job_ids:
        tq.sql(
            "UPDATE tomqueue_jobs SET locked_by = %s, lock_key = %s, locked_at = now() "
            "WHERE id = %s",
            f"{name} run:{job_id}",
            key,
            job_id,
        )
