"""Typed outcomes of one turn of the worker stack (never bare booleans)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    IDLE = "idle"  # nothing to do within the wait, or shutting down
    SUCCEEDED = "succeeded"  # performed; row deleted
    ATTEMPT_FAILED = "attempt_failed"  # Invoke's verdict, turned into one of the next two
    RETRY_SCHEDULED = "retry_scheduled"  # failed; run_at moved by reschedule_at
    FAILED = "failed"  # failed for good; failed_at set, row kept for a person
    DROPPED = "dropped"  # notification for a missing, failed, stale or busy job
    DEFERRED = "deferred"  # not yet due; handed back to the deferred manager
    MALFORMED = "malformed"  # not a tomqueue notification; acked and logged
    ERRORED = "errored"  # something unexpected; message requeued
