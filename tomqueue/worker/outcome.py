"""Typed outcomes of one turn of the worker stack (never bare booleans)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    IDLE = "idle"  # nothing to do within the wait, or shutting down
    SUCCEEDED = "succeeded"  # performed; row deleted
    ATTEMPT_FAILED = "attempt_failed"  # Invoke's verdict, turned into one of the next two
    RETRY_SCHEDULED = "retry_scheduled"  # failed; run_at moved by reschedule_at
    FAILED = "failed"  # ran, failed for good; failed_at set, row kept for a person
    REFUSED = "refused"  # failed for good without running: unknown class, bad handler,
    # poison, attempts used up by crashes
    DROPPED = "dropped"  # notification for a missing, failed, stale, busy or orphaned job
    PARKED = "parked"  # no free slot of its class, or not its serial key's turn: unlocked
    # unrun, no attempt counted, woken when a job leaves the gate
    DEFERRED = "deferred"  # not yet due; handed back to the deferred manager
    MALFORMED = "malformed"  # not a tomqueue notification; acked and logged
    ERRORED = "errored"  # something unexpected; message requeued (or dropped after tries)
    STUCK = "stuck"  # the job overran and its thread cannot be stopped: the worker exits

    @property
    def ran(self) -> bool:
        """Did a job's code run in this turn (what --max-jobs counts)?"""
        return self in (Outcome.SUCCEEDED, Outcome.RETRY_SCHEDULED, Outcome.FAILED)
