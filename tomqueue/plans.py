"""Row plans: what a failed attempt and an operator's retry write to a job's row.

Pure and table-tested, like ``tomqueue.admission`` and ``tomqueue.verdicts``. The store
asks for a plan, then its SQL only carries the plan out: the rules ("no retry time means
failed for good", "a job a live worker runs is never reset") live here, not in a CASE.
The database clock stays in SQL (``now()``), since instants must come from one clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tomqueue.error_text import storable


@dataclass(frozen=True)
class FailureWrite:
    """What the row gets after a failed attempt; the write also unlocks it."""

    attempts: int
    last_error: str  # already cut to what the column keeps
    run_at: datetime | None  # the next try; None keeps the row's own run_at
    fail_now: bool  # failed for good: failed_at is set, and no further try is scheduled


def plan_failure(attempts: int, last_error: str, retry_at: datetime | None) -> FailureWrite:
    """A failed attempt with a retry time waits for it; one without fails for good.

    The worker passes ``retry_at=None`` exactly when the job has used its attempts (or its
    class cannot say when to retry), so this is the one place that maps "no next try" to
    ``failed_at``; the crash count is always cleared by the write, since the attempt ended
    with an outcome rather than with its worker's death.
    """
    return FailureWrite(
        attempts=attempts,
        last_error=storable(last_error),
        run_at=retry_at,
        fail_now=retry_at is None,
    )


@dataclass(frozen=True)
class RetryPlan:
    """What ``tomqueue retry`` does to a row: reset it, or leave it to its live worker."""

    reset: bool
    running_on: str | None = None  # the live holder that made us leave the row alone
    attempts: int = 0  # a fresh set of attempts
    crashes: int = 0  # and a clean crash record: poison is judged anew


def plan_retry(locked_by: str | None, holder_alive: bool) -> RetryPlan:
    """Reset the row unless a live worker holds it.

    Unlocking a row a live worker is running would let a second run start beside the
    first; a row whose worker has died (its lease is gone) is safe to reset. A reset row is
    pending, due now and announced now (those instants are the database's, set in SQL).
    """
    if locked_by is not None and holder_alive:
        return RetryPlan(reset=False, running_on=locked_by)
    return RetryPlan(reset=True)
