"""One import shim for Django's Tasks framework, wherever it lives.

Django 6 ships it as ``django.tasks``; on Django 5.2 the ``django-tasks`` backport provides
the same public API as ``django_tasks`` (which must then be in INSTALLED_APPS). Everything
the backend uses comes from here, and only public names are used: the two homes differ
in a few spellings (``InvalidTask`` / ``InvalidTaskError``, where ``normalize_json``
lives), which are settled once below.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any


def _tasks_home() -> tuple[ModuleType, str]:
    try:
        return importlib.import_module("django.tasks"), "django.tasks"
    except ImportError:
        pass
    try:
        return importlib.import_module("django_tasks"), "django_tasks"
    except ImportError as exc:
        raise ImportError(
            "tomqueue.contrib.django needs Django's Tasks framework: Django 6 or newer "
            "(django.tasks), or Django 5.2 with the django-tasks backport "
            "(pip install 'tomqueue[django]', and 'django_tasks' in INSTALLED_APPS)"
        ) from exc


tasks, TASKS_MODULE = _tasks_home()
_base = importlib.import_module(f"{TASKS_MODULE}.base")
_backends_base = importlib.import_module(f"{TASKS_MODULE}.backends.base")
_exceptions = importlib.import_module(f"{TASKS_MODULE}.exceptions")
signals = importlib.import_module(f"{TASKS_MODULE}.signals")

Task: Any = _base.Task
TaskResult: Any = _base.TaskResult
TaskResultStatus: Any = _base.TaskResultStatus
TaskContext: Any = _base.TaskContext
TaskError: Any = _base.TaskError
BaseTaskBackend: Any = _backends_base.BaseTaskBackend
DEFAULT_TASK_QUEUE_NAME: str = _base.DEFAULT_TASK_QUEUE_NAME
TASK_MIN_PRIORITY: int = _base.TASK_MIN_PRIORITY
TASK_MAX_PRIORITY: int = _base.TASK_MAX_PRIORITY
task_backends: Any = tasks.task_backends

TaskResultDoesNotExist: type[Exception] = _exceptions.TaskResultDoesNotExist
# Django 6: InvalidTask; the backport: InvalidTaskError
InvalidTask: Any = getattr(
    _exceptions, "InvalidTask", getattr(_exceptions, "InvalidTaskError", None)
)


def _find_normalize_json() -> Any:
    for module, name in (
        ("django.utils.json", "normalize_json"),
        (f"{TASKS_MODULE}.utils", "normalize_json"),
    ):
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        return found
    raise ImportError("Django's Tasks framework has no normalize_json")  # pragma: no cover


normalize_json: Any = _find_normalize_json()
"""Django's rule for task arguments and results: JSON types only (tuples become lists)."""

# the finished-well status: SUCCESSFUL in Django 6.0 and the backport 0.12, SUCCEEDED in
# later development versions
SUCCESSFUL: Any = getattr(TaskResultStatus, "SUCCESSFUL", None) or TaskResultStatus.SUCCEEDED
_RESULT_FIELDS = {f.name for f in dataclasses.fields(TaskResult)}


def make_result(**fields: Any) -> Any:
    """A TaskResult from the fields every version has; ``metadata`` (newer versions
    require it) is given as empty where the class has it."""
    if "metadata" in _RESULT_FIELDS:
        fields.setdefault("metadata", {})
    return TaskResult(**fields)


__all__ = [
    "DEFAULT_TASK_QUEUE_NAME",
    "SUCCESSFUL",
    "TASKS_MODULE",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "make_result",
    "normalize_json",
    "signals",
    "task_backends",
    "tasks",
]
