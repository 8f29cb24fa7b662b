"""The tasks a worker may run: found by autodiscovery, never imported because a row says so.

``discover()`` imports the ``tasks`` module of every installed app (as Django's admin
does for ``admin`` modules), plus the modules named in the backend's ``OPTIONS["MODULES"]``,
and registers every ``Task`` object found in them under its module path
(``myapp.tasks.send_invoice``). A row naming any other path fails with
``UnknownTaskError``: the worker never imports the module a row names.

Apart from those, a process remembers the tasks it enqueued itself (``remember``), only
to describe their results (``get_result``), never to run them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from typing import Any

from tomqueue.contrib.django.compat import Task

TASKS_MODULE_NAME = "tasks"


class UnknownTaskError(LookupError):
    """The row names a task that this worker has not registered."""


class TaskRegistry:
    """Task objects by module path, filled by ``discover()``."""

    def __init__(self) -> None:
        self._tasks: dict[str, Any] = {}
        self._enqueued: dict[str, Any] = {}  # for get_result only, never run
        self._modules: list[str] = []
        self._discovered = False
        self._lock = threading.RLock()

    def discover(self, extra_modules: Iterable[str] = ()) -> list[str]:
        """Import every installed app's ``tasks`` module and ``extra_modules``, and
        register the tasks in them; returns the modules scanned. Safe to call again."""
        from django.apps import apps
        from django.utils.module_loading import module_has_submodule

        with self._lock:
            names: list[str] = []
            for config in apps.get_app_configs():
                if module_has_submodule(config.module, TASKS_MODULE_NAME):
                    names.append(f"{config.name}.{TASKS_MODULE_NAME}")
            names.extend(extra_modules)
            for name in names:
                self.register_module(importlib.import_module(name))
            self._discovered = True
            return names

    def ensure_discovered(self, extra_modules: Iterable[str] = ()) -> None:
        if not self._discovered:
            self.discover(extra_modules)

    def register_module(self, module: Any) -> None:
        """Register every Task object that ``module`` holds at its top level."""
        with self._lock:
            for value in list(vars(module).values()):
                if isinstance(value, Task):
                    self.register(value)
            if module.__name__ not in self._modules:
                self._modules.append(module.__name__)

    def register(self, task: Any) -> None:
        with self._lock:
            self._tasks[task.module_path] = task

    def remember(self, task: Any) -> None:
        """A task this process enqueued: known to ``describe``, not runnable."""
        with self._lock:
            self._enqueued.setdefault(task.module_path, task)

    def describe(self, path: str) -> Any | None:
        """The task to name in a result: registered, or enqueued by this process."""
        with self._lock:
            return self._tasks.get(path) or self._enqueued.get(path)

    def lookup(self, path: str) -> Any | None:
        """The task registered under ``path``, or None; never imports anything."""
        with self._lock:
            return self._tasks.get(path)

    def require(self, path: str) -> Any:
        found = self.lookup(path)
        if found is None:
            with self._lock:
                scanned = ", ".join(self._modules) or "none"
            raise UnknownTaskError(
                f"task {path!r} is not registered in this worker (tasks are found in the "
                f"'tasks' module of each installed app and in OPTIONS['MODULES']; modules "
                f"scanned: {scanned}). The job is kept as failed: deploy the task, then "
                "`tomqueue retry ID`"
            )
        return found

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._tasks)

    def modules(self) -> list[str]:
        with self._lock:
            return list(self._modules)


registry = TaskRegistry()
