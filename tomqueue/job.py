"""The Job base class: subclassing registers a class as runnable, with Delayed::Job's options."""

from __future__ import annotations

import inspect
import threading
from datetime import datetime, timedelta
from typing import ClassVar

from tomqueue.progress import Progress, StatusFields, run_status_of
from tomqueue.queues import MAX_QUEUE_NAME, is_queue_name

DEFAULT_MAX_ATTEMPTS = 25
DEFAULT_MAX_RUN_TIME = 4 * 60 * 60.0


class Job:
    """Base class of every job. State lives in instance attributes, which must be JSON.

    Subclasses may set ``max_attempts``, ``max_run_time`` (seconds), ``queue_name`` and
    ``priority``, override ``reschedule_at`` and the hooks ``before``, ``after``,
    ``success``, ``error`` and ``failure``. Defining a subclass registers it: only registered
    classes can ever be run by a worker, so a row can never make a worker import a module.

    Inside ``perform``, ``self.progress`` and ``self.status`` report how the run is going
    (``tomqueue.status(job_id)`` reads it); ``status_ttl`` (seconds) is how long a finished
    job's status stays readable, the setting ``status_ttl`` if None. Neither is job state.
    """

    max_attempts: ClassVar[int] = DEFAULT_MAX_ATTEMPTS
    max_run_time: ClassVar[float | timedelta] = DEFAULT_MAX_RUN_TIME
    queue_name: ClassVar[str | None] = None
    priority: ClassVar[int] = 0
    status_ttl: ClassVar[float | timedelta | None] = None
    # a crontab expression: each tomqueue-deferred that loads the class enqueues an
    # instance (built with no arguments) at every fire time, once across all managers
    cron: ClassVar[str | None] = None
    cron_timezone: ClassVar[str] = "UTC"
    # at most this many jobs of the class run at once, across every worker (None: no cap)
    concurrency_limit: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        validate_job_class(cls)  # at definition: a bad option fails the import, not a job
        registry.register(cls)

    @property
    def progress(self) -> Progress:
        """This run's progress: ``total``, ``value``, ``increment()``, ``decrement()``,
        ``finish()`` (``tomqueue.progress``); in memory outside a worker."""
        return run_status_of(self).progress

    @progress.setter
    def progress(self, value: object) -> None:
        raise AttributeError(_REPORTING_NAME.format(name="progress", cls=type(self).__qualname__))

    @property
    def status(self) -> StatusFields:
        """This run's status fields, a dict written as it changes; ``update(total=,
        progress=)`` sets the progress too (``tomqueue.progress``)."""
        return run_status_of(self).status

    @status.setter
    def status(self, value: object) -> None:
        raise AttributeError(_REPORTING_NAME.format(name="status", cls=type(self).__qualname__))

    def unique_key(self) -> str | None:
        """None (the default): every enqueue writes a job. A string: while a job of this
        class with the same key waits to run (queued, scheduled or waiting for a retry; not
        yet running, not failed for good), enqueueing another returns the waiting one's id
        and writes nothing. Enforced by a unique index in PostgreSQL, so it holds across
        processes and transactions. Computed from the job's state at enqueue."""
        return None

    def serial_key(self) -> str | None:
        """None (the default): the job runs whenever it is due. A string: jobs with the same
        key (of any class) run one at a time, in enqueue order; one that fails holds the
        key through its retries, and one that failed for good holds it until a person
        retries it to success or deletes it. Computed from the job's state at enqueue."""
        return None

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
        return _run_time_seconds(cls, cls.max_run_time)

    @classmethod
    def status_ttl_seconds(cls, default: float) -> float:
        """status_ttl as seconds, ``default`` (the setting) if the class sets none."""
        if cls.status_ttl is None:
            return default
        return _seconds_within(cls, "status_ttl", cls.status_ttl, STATUS_TTL_LIMIT)

    @classmethod
    def class_name(cls) -> str:
        """The name stored in the handler and matched against the registry."""
        return f"{cls.__module__}.{cls.__qualname__}"


MAX_CONCURRENCY_LIMIT = 10_000  # slots are advisory locks, tried in turn when others are busy
MAX_UNIQUE_KEY = 500  # characters: a btree index entry must stay well under 2,700 bytes


def stored_unique_key(job: Job) -> str | None:
    """The ``unique_key`` column for ``job``: its class name, a space and its key, so that
    jobs of two classes never share one; None for a job that is not unique. A key that is
    not a string of 1 to MAX_UNIQUE_KEY characters is refused before anything is written."""
    key = job.unique_key()
    if key is None:
        return None
    name = type(job).class_name()
    if not isinstance(key, str):
        raise TypeError(f"{name}.unique_key() must return a str or None, got {key!r}")
    if not key or len(key) > MAX_UNIQUE_KEY or "\x00" in key:
        raise ValueError(
            f"{name}.unique_key() must be 1 to {MAX_UNIQUE_KEY} characters with no NUL, "
            f"got {len(key)} characters"
        )
    return f"{name} {key}"


def stored_serial_key(job: Job) -> str | None:
    """The ``serial_key`` column for ``job`` (shared across classes, as documented), or
    None; a key that is not a string of 1 to MAX_UNIQUE_KEY characters is refused before
    anything is written."""
    key = job.serial_key()
    if key is None:
        return None
    name = type(job).class_name()
    if not isinstance(key, str):
        raise TypeError(f"{name}.serial_key() must return a str or None, got {key!r}")
    if not key or len(key) > MAX_UNIQUE_KEY or "\x00" in key:
        raise ValueError(
            f"{name}.serial_key() must be 1 to {MAX_UNIQUE_KEY} characters with no NUL, "
            f"got {len(key)} characters"
        )
    return key


MAX_RUN_TIME_LIMIT = 7 * 24 * 3600.0  # a week: longer is a mistake, not a job
STATUS_TTL_LIMIT = 366 * 24 * 3600.0  # a year, as for the setting
PRIORITY_RANGE = (-(2**31), 2**31 - 1)  # the priority column is an integer
_REPORTING_NAME = (
    "{cls}.{name} is the job's {name} report (tomqueue.Job.{name}), not an attribute: "
    "change it through its methods, and give your own attribute another name"
)


def _run_time_seconds(cls: type, value: object) -> float:
    return _seconds_within(cls, "max_run_time", value, MAX_RUN_TIME_LIMIT)


def _seconds_within(cls: type, name: str, value: object, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise TypeError(
            f"{cls.__qualname__}.{name} must be a number of seconds or a timedelta, got {value!r}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not (0 < seconds <= limit):  # also false for NaN
        raise ValueError(
            f"{cls.__qualname__}.{name} must be more than 0 and at most "
            f"{limit:g} seconds, got {value!r}"
        )
    return seconds


def validate_job_class(cls: type[Job]) -> None:
    """Check the Delayed::Job options of a class; TypeError/ValueError names the culprit.

    Run when the class is defined and again before each run (a class attribute can be
    changed later): an option the worker cannot honour (``max_run_time = math.inf``, a
    string ``max_attempts``) must fail loudly, never leave a job locked.
    """
    name = cls.__qualname__
    attempts = cls.max_attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        raise TypeError(f"{name}.max_attempts must be an int, got {attempts!r}")
    if attempts < 1:
        raise ValueError(f"{name}.max_attempts must be at least 1, got {attempts}")
    _run_time_seconds(cls, cls.max_run_time)
    cls.status_ttl_seconds(default=1.0)
    if cls.queue_name is not None and not is_queue_name(cls.queue_name):
        raise TypeError(
            f"{name}.queue_name must be None or a queue name (1 to {MAX_QUEUE_NAME} letters, "
            f"digits or '_.:-'), got {cls.queue_name!r}"
        )
    if cls.cron is not None:
        from tomqueue.cron import check_cron

        check_cron(cls.cron, cls.cron_timezone, name)
        try:
            inspect.signature(cls).bind()
        except TypeError as exc:
            raise TypeError(
                f"{name} has a cron schedule, so it must be buildable with no arguments: {exc}"
            ) from exc
    limit = cls.concurrency_limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise TypeError(f"{name}.concurrency_limit must be None or an int, got {limit!r}")
    if limit is not None and not 1 <= limit <= MAX_CONCURRENCY_LIMIT:
        raise ValueError(
            f"{name}.concurrency_limit must be 1 to {MAX_CONCURRENCY_LIMIT}, got {limit}"
        )
    priority = cls.priority
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"{name}.priority must be an int, got {priority!r}")
    if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
        raise ValueError(f"{name}.priority must fit a 32-bit integer, got {priority}")


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

    def classes(self) -> list[type[Job]]:
        """Every registered class, by name."""
        with self._lock:
            return [self._classes[name] for name in sorted(self._classes)]

    def modules(self) -> list[str]:
        """The modules that defined the registered classes (tomqueue's own left out)."""
        with self._lock:
            found = {cls.__module__ for cls in self._classes.values()}
        return sorted(m for m in found if not m.startswith("tomqueue."))


registry = JobRegistry()
