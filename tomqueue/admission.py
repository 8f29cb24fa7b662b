"""The admission decision: given a row and a notification, run it, drop it or defer it.

Pure and table-tested; LockJob supplies the row (read FOR UPDATE) and the database clock.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from tomqueue.snapshot import JobSnapshot


class Admission(StrEnum):
    RUN = "run"
    RUN_AFTER_CRASH = "run_after_crash"  # locked by a worker that has since died
    DROP_MISSING = "drop_missing"  # row deleted (done, or removed by a person)
    DROP_FAILED = "drop_failed"  # failed for good; waits for a person
    DROP_STALE = "drop_stale"  # the row changed since this notification was sent
    DROP_LOCKED = "drop_locked"  # a live worker holds it: never run twice at once
    DEFER = "defer"  # not yet due: back to the deferred path

    @property
    def runs(self) -> bool:
        return self in (Admission.RUN, Admission.RUN_AFTER_CRASH)


def admit(
    row: JobSnapshot | None,
    digest: str,
    db_now: datetime,
    holder_alive: bool,
) -> Admission:
    """Decide what to do with a notification for ``row``; the order of checks matters.

    Liveness is checked before due-ness so a row held by a live worker is never touched.
    """
    if row is None:
        return Admission.DROP_MISSING
    if row.is_failed:
        return Admission.DROP_FAILED
    if row.digest != digest:
        return Admission.DROP_STALE
    if row.locked_by is not None and holder_alive:
        return Admission.DROP_LOCKED
    if row.run_at > db_now:
        return Admission.DEFER
    if row.locked_by is not None:
        return Admission.RUN_AFTER_CRASH
    return Admission.RUN
