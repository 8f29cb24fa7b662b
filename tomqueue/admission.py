"""The admission decision: given a row and a notification, run it, drop it or defer it.

Pure and table-tested; LockJob supplies the row (read FOR UPDATE) and the database clock.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from tomqueue.snapshot import JobSnapshot


class Admission(StrEnum):
    RUN = "run"
    RUN_OWN_LOCK = "run_own_lock"  # this attempt locked it already; the reply was lost
    ORPHANED = "orphaned"  # locked by a worker whose lease is gone: the sweep takes it over
    DROP_MISSING = "drop_missing"  # row deleted (done, or removed by a person)
    DROP_FAILED = "drop_failed"  # failed for good; waits for a person
    DROP_STALE = "drop_stale"  # the row changed since this notification was sent
    DROP_LOCKED = "drop_locked"  # a live worker holds it: never run twice at once
    DEFER = "defer"  # not yet due: back to the deferred path

    @property
    def runs(self) -> bool:
        return self in (Admission.RUN, Admission.RUN_OWN_LOCK)


def admit(
    row: JobSnapshot | None,
    digest: str,
    db_now: datetime,
    holder_alive: bool,
    own_lock: str | None = None,
) -> Admission:
    """Decide what to do with a notification for ``row``; the order of checks matters.

    ``own_lock`` is the ``locked_by`` this attempt writes: a lock that committed but whose
    reply was lost (a dropped connection) is recognised on the retry instead of being taken
    for another worker's. Liveness is checked before due-ness so a row held by a live
    worker is never touched. A row whose holder is dead is not run here at once: the lease
    may only be between connections (a PostgreSQL restart), so the sweep takes it over once
    the lease has stayed gone for the orphan grace.
    """
    if row is None:
        return Admission.DROP_MISSING
    if row.is_failed:
        return Admission.DROP_FAILED
    if row.digest != digest:
        return Admission.DROP_STALE
    if own_lock is not None and row.locked_by == own_lock:
        return Admission.RUN_OWN_LOCK
    if row.locked_by is not None:
        return Admission.DROP_LOCKED if holder_alive else Admission.ORPHANED
    if row.run_at > db_now:
        return Admission.DEFER
    return Admission.RUN
