"""The Job base class: subclassing registers a class as runnable, with Delayed::Job's options."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import ClassVar

DEFAULT_MAX_ATTEMPTS = 25
DEFAULT_MAX_RUN_TIME = 4 * 60 * 60.0


class Job:
    """Base class of every job. State lives in instance attributes, which must be JSON.

    Subclasses may set ``max_attempts``, ``max_run_time`` (seconds), ``queue_name`` and
    ``priority``, override ``reschedule_at`` and the hooks ``before``, ``after``,
    ``success``, ``error`` and ``failure``. Defining a subclass registers it: only registered
    classes can ever be run by a worker, so a row can never make a worker import a module.
    """

    max_attempts: ClassVar[int] = DEFAULT_MAX_ATTEMPTS
    max_run_time: ClassVar[float | timedelta] = DEFAULT_MAX_RUN_TIME
    queue_name: ClassVar[str | None] = None
    priority: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        registry.register(cls)

    def perform(self) -> None:
        """Do the work. Raise to fail this attempt."""
        raise NotImplementedError(f"{type(self).__qualname__} must define perform()")

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        """When to try again after ``attempts`` failures: Delayed::Job's attempts**4 + 5 s."""
        return now + timedelta(seconds=attempts**4 + 5)

    def before(self) -> None:
        """Called before perform()."""

    def after(self) -> None:
        """Called after perform(), whether it succeeded or failed."""

    def success(self) -> None:
        """Called when perform() returned."""

    def error(self, exc: BaseException) -> None:
        """Called when perform() raised (or ran out of time)."""

    def failure(self) -> None:
        """Called once the job has used up max_attempts and is kept as failed."""

    @classmethod
    def max_run_time_seconds(cls) -> float:
        """max_run_time as seconds, whichever form the class gave it in."""
        value = cls.max_run_time
        return value.total_seconds() if isinstance(value, timedelta) else float(value)

    @classmethod
    def class_name(cls) -> str:
        """The name stored in the handler and matched against the registry."""
        return f"{cls.__module__}.{cls.__qualname__}"


class JobRegistry:
    """Every Job subclass defined in this process, by its stored name."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Job]] = {}
        self._lock = threading.Lock()

    def register(self, cls: type[Job]) -> None:
        with self._lock:
            self._classes[cls.class_name()] = cls

    def lookup(self, name: str) -> type[Job] | None:
        """The class registered under ``name``, or None; never imports anything."""
        with self._lock:
            return self._classes.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._classes)


registry = JobRegistry()
