"""ExceptionReports: hands a job's failure to the application's exception reporter.

``tomqueue.configure(exception_reporter=fn)`` (or ``TOMQUEUE_EXCEPTION_REPORTER=module:fn``
in the worker's environment) makes every worker call ``fn(exc, job_id=..., job_class=...,
attempts=...)`` when a job fails for good, as Exqueue does; ``report_every_attempt=True``
reports every failed attempt too. A reporter that raises is logged and ignored: the
failure is already recorded in the row when it is called.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable

from tomqueue.errors import ConfigurationError
from tomqueue.observers import Ending, JobEnded, Observer

log = logging.getLogger(__name__)

ExceptionReporter = Callable[..., object]

_DOTTED = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def check_reporter_spec(value: object) -> None:
    """Settings' check: None, a callable, or "package.module:function" text."""
    if value is None or callable(value):
        return
    if isinstance(value, str) and _DOTTED.fullmatch(value.strip()):
        return
    raise ConfigurationError(
        "exception_reporter (TOMQUEUE_EXCEPTION_REPORTER) must be a callable, or the text "
        f"'package.module:function' naming one, got {value!r}"
    )


def resolve_reporter(value: ExceptionReporter | str | None) -> ExceptionReporter | None:
    """The reporter a setting names. Text is imported here, from the process's own
    configuration (never from anything in the database or the broker)."""
    if value is None or callable(value):
        return value
    module_name, _, attribute = value.strip().partition(":")
    try:
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"exception_reporter {value!r} cannot be loaded ({type(exc).__name__}: {exc}); "
            "is its module on PYTHONPATH?"
        ) from exc
    if not callable(found):
        raise ConfigurationError(f"exception_reporter {value!r} is not callable")
    return found


class ExceptionReports(Observer):
    """Calls the reporter for attempts that failed (for good only, unless every_attempt)."""

    def __init__(self, reporter: ExceptionReporter, every_attempt: bool = False) -> None:
        self.reporter = reporter
        self.every_attempt = every_attempt

    def job_ended(self, event: JobEnded) -> None:
        if event.ending is Ending.SUCCEEDED or event.error is None:
            return
        if not (event.failed_for_good or self.every_attempt):
            return
        try:
            self.reporter(
                event.error,
                job_id=event.job_id,
                job_class=event.job_class,
                attempts=event.attempts,
            )
        except Exception:  # the application's code; the job's outcome is already written
            log.exception(
                "the exception reporter raised while reporting job %s; ignored",
                event.job_id,
                extra={"job_id": event.job_id, "job_class": event.job_class},
            )
