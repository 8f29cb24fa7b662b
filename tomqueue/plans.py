"""Row plans: what a failed attempt and an operator's action write to a job's row.

Pure and table-tested, like ``tomqueue.admission`` and ``tomqueue.verdicts``. The store
asks for a plan, then its SQL only carries the plan out: the rules ("no retry time means
failed for good", "a job a live worker runs is never reset") live here, not in a CASE.
The database clock stays in SQL (``now()``), since instants must come from one clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

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


# -- operators' other actions --------------------------------------------------------------
# Every action below leaves a row a live worker holds alone: changing it under the run
# could start a second run beside the first (retry, reschedule, run now) or take the row
# from under a job that then finishes into nothing (delete). A row whose holder is dead is
# fair game: the action replaces the sweep's recovery.


def live_holder(locked_by: str | None, holder_alive: bool) -> str | None:
    """The live worker running the row, or None if no live worker holds it."""
    return locked_by if locked_by is not None and holder_alive else None


@dataclass(frozen=True)
class DeletePlan:
    """What ``delete`` does to a row: remove it, or leave it to its live worker."""

    delete: bool
    running_on: str | None = None


def plan_delete(locked_by: str | None, holder_alive: bool) -> DeletePlan:
    """Delete the row unless a live worker holds it."""
    holder = live_holder(locked_by, holder_alive)
    return DeletePlan(delete=False, running_on=holder) if holder else DeletePlan(delete=True)


@dataclass(frozen=True)
class ReschedulePlan:
    """What ``reschedule`` (and ``run_now``) write to a row.

    A rescheduled row is pending and unlocked with the new ``run_at``. If that is due
    already, it is marked released and announced now; otherwise it waits, unreleased, for
    the deferred manager. A failed row comes back with a fresh set of attempts and a clean
    crash record, as from a retry.
    """

    apply: bool
    running_on: str | None = None
    run_at: datetime | None = None
    due: bool = False
    fresh_attempts: bool = False


def plan_reschedule(
    locked_by: str | None,
    holder_alive: bool,
    failed: bool,
    at: datetime | timedelta,
    db_now: datetime,
) -> ReschedulePlan:
    """Move the row to ``at`` (an instant, or a delay from the database's ``now``).

    ``db_now`` is the transaction's ``now()``, the same clock the SQL writes with, so "due"
    here and "released" there agree. A naive ``at`` is refused: instants are UTC-aware.
    """
    if isinstance(at, datetime) and at.tzinfo is None:
        raise ValueError(f"reschedule needs a timezone-aware time, got {at.isoformat()}")
    holder = live_holder(locked_by, holder_alive)
    if holder:
        return ReschedulePlan(apply=False, running_on=holder)
    run_at = db_now + at if isinstance(at, timedelta) else at
    return ReschedulePlan(apply=True, run_at=run_at, due=run_at <= db_now, fresh_attempts=failed)


class PriorityRelease(StrEnum):
    """What a priority change does to the row's announcement (the digest covers priority,
    so a notification already sent for the row is stale once the priority changes)."""

    ANNOUNCE = "announce"  # due and unlocked: marked released and announced again now
    DEFER = "defer"  # future: unreleased, so the deferred manager announces it anew
    KEEP = "keep"  # failed or held: no notification is wanted now


def plan_priority(locked_by: str | None, failed: bool, due: bool) -> PriorityRelease:
    """Change the priority of any row; decide how it is announced again.

    A held row keeps its lock whether its holder lives or not: the run goes on (only its
    next try sees the new priority), and a dead holder's row is recovered, and announced
    with the new digest, by the sweep.
    """
    if failed or locked_by is not None:
        return PriorityRelease.KEEP
    return PriorityRelease.ANNOUNCE if due else PriorityRelease.DEFER
