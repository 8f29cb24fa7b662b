"""The test app's tasks: each records its run in the test database's test_runs table
through Django's own connection, so a test sees what ran, where, and how often."""

from __future__ import annotations

import os
from typing import Any

from django.db import connection

from tomqueue.contrib.django.compat import tasks


def record(label: str, event: str = "perform", detail: str = "") -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO test_runs (label, event, detail, pid) VALUES (%s, %s, %s, %s)",
            [label, event, detail, os.getpid()],
        )


@tasks.task
def add(label: str, a: int, b: int) -> int:
    record(label)
    return a + b


@tasks.task
def echo(label: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    record(label)
    return {"args": list(args), "kwargs": kwargs}


@tasks.task
def explode(label: str, message: str) -> None:
    record(label)
    raise ValueError(message)


@tasks.task(takes_context=True)
def with_context(context: Any, label: str) -> dict[str, Any]:
    record(label)
    return {"id": context.task_result.id, "attempt": context.attempt}


@tasks.task(queue_name="billing")
def bill(label: str) -> str:
    record(label, detail="billing")
    return "billed"


@tasks.task
async def async_add(label: str, a: int, b: int) -> int:
    from asgiref.sync import sync_to_async

    await sync_to_async(record)(label)
    return a + b


@tasks.task
def backend_pid(label: str) -> int:
    """The server pid of this worker's Django connection (for the restart test)."""
    record(label)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@tasks.task
def not_json(label: str) -> object:
    record(label)
    return {1, 2}


@tasks.task
def enqueue_child(label: str) -> str:
    """A task that enqueues another from inside the worker."""
    record(label)
    return add.enqueue(f"{label}-child", 2, 3).id


@tasks.task
def wait_for_release(label: str) -> str:
    """Runs until the test inserts a 'release' row for its label (RUNNING meanwhile)."""
    import time

    record(label)
    for _ in range(600):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM test_runs WHERE label = %s AND event = 'release'", [label]
            )
            if cursor.fetchone()[0]:
                return "released"
        time.sleep(0.05)
    raise TimeoutError("never released")
