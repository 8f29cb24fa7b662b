"""ObserveOutcome: the worker stack's observe-only layer, telling the App's observers how
each attempt ended (metrics, exception reports) and logging one line per finished job.

It sits just inside ErrorHandling, so it hears of an attempt only once its outcome is
written and its message acked; what an observer does (or raises) cannot change either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tomqueue.observers import Ending, JobEnded, Observers
from tomqueue.queues import shown_queue
from tomqueue.worker.context import WorkContext
from tomqueue.worker.outcome import Outcome

log = logging.getLogger(__name__)

Next = Callable[[WorkContext], Outcome]

# the outcomes that end an attempt of a job, and what they mean for it
_ENDINGS = {
    Outcome.SUCCEEDED: Ending.SUCCEEDED,
    Outcome.RETRY_SCHEDULED: Ending.RETRIED,
    Outcome.FAILED: Ending.FAILED,
    Outcome.REFUSED: Ending.FAILED,
}


def job_ended(ctx: WorkContext, outcome: Outcome, now: float) -> JobEnded | None:
    """What an observer hears of this turn of the stack; None if no attempt ended (idle,
    dropped, deferred, errored, or stuck: a stuck job is counted as crashed when the
    sweep takes it back)."""
    ending = _ENDINGS.get(outcome)
    row = ctx.locked_row
    if ending is None or row is None:
        return None
    ran = outcome.ran
    if ran and ctx.timed_out:
        ending = Ending.TIMEOUT
    job = ctx.built_job
    return JobEnded(
        job_id=row.id,
        job_class=type(job).class_name() if job is not None else row.class_name,
        queue=shown_queue(row.queue),
        attempts=row.attempts + 1 if ran and outcome is not Outcome.SUCCEEDED else row.attempts,
        attempt=row.attempts + 1,
        ending=ending,
        failed_for_good=outcome in (Outcome.FAILED, Outcome.REFUSED),
        ran=ran,
        duration=max(0.0, now - ctx.locked_monotonic) if ran else None,
        worker=ctx.worker_name,
        error=None if outcome is Outcome.SUCCEEDED else ctx.error,
    )


class ObserveOutcome:
    """Tells ``observers`` of every attempt that ended; never changes the outcome."""

    def __init__(self, observers: Observers) -> None:
        self.observers = observers

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        outcome = call_next(ctx)
        event = job_ended(ctx, outcome, time.monotonic())
        if event is not None:
            _log_end(event)
            self.observers.job_ended(event)
        return outcome


def _log_end(event: JobEnded) -> None:
    extra = {
        "job_id": event.job_id,
        "job_class": event.job_class,
        "attempt": event.attempt,
        "worker": event.worker,
        "queue": event.queue,
        "outcome": event.ending.value,
        "duration": None if event.duration is None else round(event.duration, 6),
    }
    if event.duration is None:
        log.info("job %s (%s) %s", event.job_id, event.job_class, event.ending, extra=extra)
        return
    log.info(
        "job %s (%s) %s in %.3fs",
        event.job_id,
        event.job_class,
        event.ending,
        event.duration,
        extra=extra,
    )
