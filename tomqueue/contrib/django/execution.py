"""Running one Django task inside the worker: its TaskContext, Django's task signals, and
its return value made JSON by Django's rule."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from tomqueue.contrib.django import compat
from tomqueue.progress import check_field_value

if TYPE_CHECKING:
    from tomqueue.contrib.django.job import DjangoTask, RunInfo


def run_task(job: DjangoTask, task: Any, run: RunInfo | None) -> Any:
    """Call ``task`` with the job's arguments; its return value as JSON. Raises what the
    task raised (the attempt fails), after sending ``task_finished`` with FAILED."""
    task = _as_enqueued(job, task)
    result = _running_result(job, task, run)
    backend_class = _backend_class(job.backend)
    compat.signals.task_started.send(sender=backend_class, task_result=result)
    try:
        if task.takes_context:
            raw = task.call(compat.TaskContext(task_result=result), *job.args, **job.kwargs)
        else:
            raw = task.call(*job.args, **job.kwargs)
        value = compat.normalize_json(raw)
        check_field_value(value, "the task's return value")  # what jsonb takes back
    except BaseException as exc:
        _finish(result, compat.TaskResultStatus.FAILED, exc)
        compat.signals.task_finished.send(sender=backend_class, task_result=result)
        raise
    _finish(result, compat.SUCCESSFUL, None, value)
    compat.signals.task_finished.send(sender=backend_class, task_result=result)
    return value


def _as_enqueued(job: DjangoTask, task: Any) -> Any:
    """The registered task with the options it was enqueued with (``.using(...)``)."""
    try:
        return task.using(
            priority=job.django_priority, queue_name=job.django_queue, backend=job.backend
        )
    except Exception:  # the settings changed since: the task as registered still runs
        return task


def _running_result(job: DjangoTask, task: Any, run: RunInfo | None) -> Any:
    from tomqueue.contrib.django.job import worker_id

    now = timezone.now()
    attempts = run.attempts if run is not None else 0
    wid = run.worker_id if run is not None else worker_id()
    return compat.make_result(
        task=task,
        id=str(run.job_id) if run is not None else "",
        status=compat.TaskResultStatus.RUNNING,
        enqueued_at=run.enqueued_at if run is not None else None,
        started_at=run.started_at or now if run is not None else now,
        finished_at=None,
        last_attempted_at=run.started_at or now if run is not None else now,
        args=job.args,
        kwargs=job.kwargs,
        backend=job.backend,
        errors=[],
        worker_ids=[*(["unknown"] * attempts), wid],
    )


def _finish(result: Any, status: Any, exc: BaseException | None, value: Any = None) -> None:
    # TaskResult is frozen; Django's own backends set its outcome the same way
    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", timezone.now())
    if exc is not None:
        result.errors.append(error_for(exc))
    else:
        object.__setattr__(result, "_return_value", value)


def error_for(exc: BaseException) -> Any:
    cls = type(exc)
    return compat.TaskError(
        exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
        traceback="".join(traceback.format_exception(exc)),
    )


def _backend_class(alias: str) -> type:
    try:
        return type(compat.task_backends[alias])
    except Exception:
        from tomqueue.contrib.django.backend import TomQueueBackend

        return TomQueueBackend
