"""TomQueueBackend: Django's Tasks framework on tomqueue.

``enqueue`` writes a tomqueue row through Django's own connection, inside the caller's
transaction, and announces it from ``transaction.on_commit`` (``DjangoTransaction``):
a rollback means the task never runs. ``get_result`` reads the row, or once it has
succeeded and been deleted, its history row (``tomqueue_job_history``), through the same
connection, so a result read inside the enqueuing transaction sees the task as READY.

Priorities: Django's run higher first (-100..100), tomqueue's lower first, so a task's
row gets ``priority = -task.priority``. With tomqueue's default levels (no
``priority_map``) that makes Django 1..100 HIGH, 0 NORMAL, -1..-9 LOW and -10..-100 BULK.
Queues: Django's "default" is tomqueue's default queue; any other name is a named queue.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core import checks
from django.utils import timezone

from tomqueue.app import App
from tomqueue.contrib.django import compat
from tomqueue.contrib.django.config import OPTION_KEYS, tomqueue_changes
from tomqueue.contrib.django.job import ERROR_CLASS_FIELD, RESULT_FIELD, WORKER_FIELD, DjangoTask
from tomqueue.contrib.django.registry import registry
from tomqueue.contrib.django.transaction import DjangoTransaction
from tomqueue.default_app import current_settings, default_app
from tomqueue.queues import DEFAULT_QUEUE, is_queue_name
from tomqueue.settings import Settings

_apps: list[App] = []  # Apps built for backends whose settings are not the process's
_apps_lock = threading.Lock()

READ_RESULT = """SELECT j.id IS NOT NULL AS in_jobs, j.handler, j.attempts, j.last_error,
        j.run_at, j.locked_at, j.locked_by, j.failed_at, j.created_at, j.updated_at,
        h.job_id IS NOT NULL AS in_history, h.outcome, h.enqueued_at AS h_enqueued_at,
        h.started_at AS h_started_at, h.finished_at AS h_finished_at,
        h.attempts AS h_attempts, h.fields::text AS h_fields,
        COALESCE(h.expires_at <= now(), false) AS expired
    FROM (SELECT CAST(%(id)s AS bigint) AS id) q
    LEFT JOIN tomqueue_jobs j ON j.id = q.id
    LEFT JOIN tomqueue_job_history h ON h.job_id = q.id"""


class TomQueueBackend(compat.BaseTaskBackend):
    """``TASKS = {"default": {"BACKEND": "tomqueue.contrib.django.TomQueueBackend"}}``"""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.database = str(self.options.get("DATABASE", "default"))
        # (the settings in force, the App for them): the settings are worked out again
        # only when tomqueue.configure() has changed what is in force
        self._resolved: tuple[Settings, App] | None = None

    # -- tomqueue --------------------------------------------------------------------------

    def tomqueue_changes(self) -> dict[str, Any]:
        """The ``tomqueue.configure()`` changes this backend's OPTIONS mean (config.py)."""
        return tomqueue_changes(self.options)

    def tomqueue_settings(self) -> Settings:
        return current_settings().replace(**self.tomqueue_changes())

    @property
    def app(self) -> App:
        """The App announcing this backend's jobs: the process's own when the settings
        agree (a worker's, so tasks that enqueue share its connections), else one per
        distinct settings, kept for the process's life."""
        base = current_settings()
        resolved = self._resolved
        if resolved is not None and resolved[0] is base:
            return resolved[1]
        app = _app_for(base.replace(**self.tomqueue_changes()))
        self._resolved = (base, app)
        return app

    def worker_modules(self) -> list[str]:
        return [str(name) for name in self.options.get("MODULES") or []]

    # -- Django's Tasks API ----------------------------------------------------------------

    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        if not is_queue_name(task.queue_name):
            raise compat.InvalidTask(
                f"queue_name {task.queue_name!r} is not a tomqueue queue name (1 to 100 "
                "letters, digits or '_.:-', starting with a letter or digit)"
            )

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.validate_task(task)
        registry.remember(task)
        args = compat.normalize_json(list(args))
        kwargs = compat.normalize_json(dict(kwargs))
        job = DjangoTask(
            task=task.module_path,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            django_priority=task.priority,
            queue_name=task.queue_name,
        )
        run_after = task.run_after
        if run_after is not None and timezone.is_naive(run_after):
            run_after = timezone.make_aware(run_after)
        job_id = self.app.enqueue_many(
            [job],
            priority=tomqueue_priority(task.priority),
            run_at=run_after,
            queue=None if task.queue_name == DEFAULT_QUEUE else task.queue_name,
            caller=DjangoTransaction(self.database),
        )[0]
        result = compat.make_result(
            task=task,
            id=str(job_id),
            status=compat.TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        compat.signals.task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        try:
            job_id = int(str(result_id))
        except ValueError:
            raise compat.TaskResultDoesNotExist(result_id) from None
        rows = DjangoTransaction(self.database).run(READ_RESULT, {"id": job_id})
        record = rows[0] if rows else None
        if record is None:
            raise compat.TaskResultDoesNotExist(result_id)
        return self._result_from(str(job_id), record)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        yield from super().check(**kwargs)
        from django.db import connections

        unknown = sorted(set(self.options) - OPTION_KEYS)
        if unknown:
            yield checks.Error(
                f"TASKS[{self.alias!r}]['OPTIONS'] has unknown key(s) {', '.join(unknown)}",
                hint=f"valid keys: {', '.join(sorted(OPTION_KEYS))}",
                id="tomqueue.E001",
            )
        for name in sorted(self.queues):
            if not is_queue_name(name):
                yield checks.Error(
                    f"TASKS[{self.alias!r}]['QUEUES'] has {name!r}, which is not a tomqueue "
                    "queue name",
                    hint="1 to 100 letters, digits or '_.:-', starting with a letter or digit",
                    id="tomqueue.E002",
                )
        if self.database not in connections:
            yield checks.Error(
                f"TASKS[{self.alias!r}] writes through database {self.database!r}, which is "
                "not in DATABASES",
                id="tomqueue.E003",
            )
        elif connections[self.database].vendor != "postgresql":
            yield checks.Error(
                f"TASKS[{self.alias!r}] needs a PostgreSQL database; {self.database!r} is "
                f"{connections[self.database].vendor}",
                id="tomqueue.E004",
            )
        else:
            try:
                self.tomqueue_settings()
            except Exception as exc:
                yield checks.Error(
                    f"TASKS[{self.alias!r}]: tomqueue refuses its settings: {exc}",
                    id="tomqueue.E005",
                )

    # -- reading results -------------------------------------------------------------------

    def _result_from(self, result_id: str, record: dict[str, Any]) -> Any:
        Status = compat.TaskResultStatus
        fields: dict[str, Any] = {}
        if record["in_history"] and record["h_fields"]:
            fields = json.loads(record["h_fields"])
        if record["in_jobs"]:
            state = _state_of_handler(record["handler"])
            if record["failed_at"] is not None:
                status = Status.FAILED
            elif record["locked_by"] is not None:
                status = Status.RUNNING
            else:
                status = Status.READY
            attempts = int(record["attempts"]) + (1 if status == Status.RUNNING else 0)
            errors = []
            if record["last_error"]:
                errors = [_task_error(record["last_error"], fields.get(ERROR_CLASS_FIELD))]
            workers = _workers(fields, attempts, record["locked_by"])
            started = record["locked_at"] if status == Status.RUNNING else None
            return self._result(
                result_id,
                state,
                status,
                enqueued_at=record["created_at"],
                started_at=started or record.get("h_started_at"),
                finished_at=record["failed_at"],
                last_attempted_at=started or (record["updated_at"] if attempts else None),
                errors=errors,
                worker_ids=workers,
            )
        if record["in_history"] and record["outcome"] == "succeeded" and not record["expired"]:
            if "task" not in fields:
                raise compat.TaskResultDoesNotExist(result_id)  # not a Django task's job
            attempts = int(record["h_attempts"] or 1)
            result = self._result(
                result_id,
                fields,
                compat.SUCCESSFUL,
                enqueued_at=record["h_enqueued_at"],
                started_at=record["h_started_at"],
                finished_at=record["h_finished_at"],
                last_attempted_at=record["h_started_at"],
                errors=[],
                worker_ids=_workers(fields, attempts, None),
            )
            object.__setattr__(result, "_return_value", fields.get(RESULT_FIELD))
            return result
        raise compat.TaskResultDoesNotExist(result_id)

    def _result(
        self,
        result_id: str,
        state: dict[str, Any],
        status: Any,
        *,
        enqueued_at: datetime | None,
        started_at: datetime | None,
        finished_at: datetime | None,
        last_attempted_at: datetime | None,
        errors: list[Any],
        worker_ids: list[str],
    ) -> Any:
        path = str(state.get("task", ""))
        registry.ensure_discovered(self.worker_modules())
        task = registry.describe(path)
        if task is None:
            raise compat.TaskResultDoesNotExist(
                f"{result_id}: its task {path!r} is not registered in this process"
            )
        # as enqueued; under settings that have changed since, the task as it is now
        with contextlib.suppress(Exception):
            task = task.using(
                priority=int(state.get("django_priority", task.priority)),
                queue_name=str(state.get("queue_name", task.queue_name)),
                backend=str(state.get("backend", self.alias)),
            )
        return compat.make_result(
            task=task,
            id=result_id,
            status=status,
            enqueued_at=enqueued_at,
            started_at=started_at,
            finished_at=finished_at,
            last_attempted_at=last_attempted_at,
            args=state.get("args", []),
            kwargs=state.get("kwargs", {}),
            backend=str(state.get("backend", self.alias)),
            errors=errors,
            worker_ids=worker_ids,
        )


def _app_for(settings: Settings) -> App:
    current = default_app()
    if current.settings == settings:
        return current
    with _apps_lock:
        for app in _apps:
            if app.settings == settings:
                return app
        app = App(settings)
        _apps.append(app)
        return app


def tomqueue_priority(django_priority: int) -> int:
    """A Django priority (-100..100, higher first) as a tomqueue row's (lower first)."""
    return -int(django_priority)


def _state_of_handler(handler: str) -> dict[str, Any]:
    """The DjangoTask state in a row's handler, by the stored names ({} if not one)."""
    try:
        document = json.loads(handler)
    except Exception:
        return {}
    if not isinstance(document, dict) or document.get("class") != DjangoTask.class_name():
        return {}
    state = document.get("state")
    if not isinstance(state, dict):
        return {}
    return {
        "task": state.get("task"),
        "args": state.get("args", []),
        "kwargs": state.get("kwargs", {}),
        "backend": state.get("backend"),
        "django_priority": state.get("django_priority", 0),
        "queue_name": state.get("django_queue", DEFAULT_QUEUE),
    }


def _task_error(last_error: str, exception_class: object) -> Any:
    """Django's TaskError from tomqueue's last_error ("Name: message" then the
    traceback) and the class path the job recorded (a job refused before it ran, such as
    an unknown task, records none: tomqueue's own error class stands in)."""
    head, _, trace = last_error.partition("\n")
    path = exception_class if isinstance(exception_class, str) else "tomqueue.errors.TomQueueError"
    return compat.TaskError(exception_class_path=path, traceback=trace or head)


def _workers(fields: dict[str, Any], attempts: int, locked_by: str | None) -> list[str]:
    """Django's worker_ids, one per attempt: the ones recorded, the holder's if running."""
    last = fields.get(WORKER_FIELD)
    if locked_by:
        last = " ".join(locked_by.split()[:2])  # "host pid:1" of "host pid:1 key:2 run:3"
    if attempts <= 0:
        return []
    return [*(["unknown"] * (attempts - 1)), str(last or "unknown")]
