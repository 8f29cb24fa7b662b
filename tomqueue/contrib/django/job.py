"""DjangoTask: the one tomqueue Job class that every Django task runs as.

Its state (the row's handler, JSON) is the task's module path, its arguments, the backend
alias it was enqueued with, and its priority and queue as Django named them. ``perform``
finds the task in the worker's registry (``tomqueue.contrib.django.registry``), calls it,
and records what ``get_result`` needs in the job's status fields, which the statement
ending the job keeps in ``tomqueue_job_history``: the return value (JSON, Django's rule),
the arguments and the worker. A task that raises is FAILED at once (``max_attempts = 1``,
as with Django's own backends); its exception class is recorded beside tomqueue's
``last_error`` traceback.
"""

from __future__ import annotations

import contextvars
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import tomqueue
from tomqueue.contrib.django.registry import registry

# the status fields DjangoTask writes (tomqueue_job_history.fields)
RESULT_FIELD = "return_value"
ERROR_CLASS_FIELD = "exception_class"
WORKER_FIELD = "worker_id"


@dataclass(frozen=True)
class RunInfo:
    """The row a DjangoTask runs from, as the worker locked it (set by the worker layer
    in ``tomqueue.contrib.django.worker``, on the job's own thread)."""

    job_id: int
    attempts: int  # failed runs before this one
    enqueued_at: datetime
    started_at: datetime | None
    worker_id: str


current_run: contextvars.ContextVar[RunInfo | None] = contextvars.ContextVar(
    "tomqueue_django_run", default=None
)


def worker_id() -> str:
    """This process, as Django's ``TaskResult.worker_ids`` names it."""
    return f"{socket.gethostname()} pid:{os.getpid()}"


class DjangoTask(tomqueue.Job):
    """A Django task's call, run by ``manage.py tomqueue_worker``."""

    max_attempts: ClassVar[int] = 1

    def __init__(
        self,
        task: str,
        args: list[Any],
        kwargs: dict[str, Any],
        backend: str = "default",
        django_priority: int = 0,
        queue_name: str = "default",
    ) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.backend = backend
        self.django_priority = django_priority
        self.django_queue = queue_name

    def perform(self) -> None:
        from tomqueue.contrib.django.execution import run_task

        registry.ensure_discovered()
        found = registry.require(self.task)  # UnknownTaskError: failed, kept, retryable
        value = run_task(self, found, current_run.get())
        self.status.update({RESULT_FIELD: value, WORKER_FIELD: worker_id(), **self._call()})

    def error(self, exc: BaseException) -> None:
        cls = type(exc)
        self.status.update(
            {
                ERROR_CLASS_FIELD: f"{cls.__module__}.{cls.__qualname__}",
                WORKER_FIELD: worker_id(),
                **self._call(),
            }
        )

    def _call(self) -> dict[str, Any]:
        """What get_result needs once the row is gone (a succeeded job's is deleted)."""
        return {
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "backend": self.backend,
            "django_priority": self.django_priority,
            "queue_name": self.django_queue,
        }
