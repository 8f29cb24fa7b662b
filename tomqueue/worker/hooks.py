"""Running user code: every call into a job goes through here, and nothing escapes.

A job is user code and can raise anything: ``SystemExit``, ``KeyboardInterrupt``, an
exception whose ``__str__`` raises, a ``JobTimeout`` raised into its thread. Whatever it
does, the worker must record that attempt as failed with the true error and go on with the
slot, so the job is never left locked by a live worker. Delayed::Job's order lives here:
before, perform, success, then error (on failure) and after; failure() once it fails for
good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from tomqueue.error_text import describe_error
from tomqueue.job import Job

log = logging.getLogger(__name__)


def guarded(call: Callable[[], object]) -> BaseException | None:
    """Run ``call``; return whatever it raised (any BaseException), or None."""
    try:
        call()
    except BaseException as exc:  # user code: SystemExit and KeyboardInterrupt included
        return exc
    return None


def run_hooked(job: Job, perform: Callable[[], object]) -> BaseException | None:
    """before → perform → success, then error(exc) on failure, then after; returns the
    error that failed the attempt, or None if it succeeded (an after() that raises fails
    an otherwise successful attempt, as in Delayed::Job)."""

    def body() -> None:
        job.before()
        perform()
        job.success()

    error = guarded(body)
    if error is None:
        return guarded(job.after)
    _report(guarded(lambda: job.error(error)), "error", job)
    _report(guarded(job.after), "after", job)
    return error


def call_failure_hook(job: Job) -> None:
    """The job has failed for good: tell it, whatever its hook does."""
    _report(guarded(job.failure), "failure", job)


def retry_time(job: Job, now: datetime, attempts: int) -> tuple[datetime, str | None]:
    """When to run again: the job's reschedule_at, or the default backoff with a note
    saying why if reschedule_at raised or returned something that is not an aware
    datetime within the calendar."""
    problem: str | None = None
    try:
        chosen = job.reschedule_at(now, attempts)
    except BaseException as exc:  # user code
        problem = f"reschedule_at() raised {describe_error(exc).splitlines()[0]}"
    else:
        if isinstance(chosen, datetime) and chosen.tzinfo is not None:
            return chosen, None
        problem = f"reschedule_at() returned {_short_repr(chosen)}, not an aware datetime"
    try:
        fallback = Job.reschedule_at(job, now, attempts)
    except OverflowError:
        fallback = now
    return fallback, f"{problem}; the default backoff was used"


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except BaseException:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _report(error: BaseException | None, hook: str, job: Job) -> None:
    if error is not None:
        log.error(
            "the %s() hook of %s raised; ignored: %s",
            hook,
            type(job).class_name(),
            describe_error(error).splitlines()[0],
        )
