"""Decisions about a locked job that need its class: run it, or fail it for good now.

Pure and table-tested. The sweep that takes over an orphaned job only counts the crash
(attempts + 1, crashes + 1) and announces the row again: it may run in a process that has
not loaded the job's class. The worker that locks the row next has the class, so it is the
one that decides "poison" or "out of attempts" and calls the job's ``failure()`` hook, as
Delayed::Job does for every job that fails for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tomqueue.snapshot import JobSnapshot


class LockedVerdict(StrEnum):
    RUN = "run"
    POISON = "poison"  # its worker died max_crashes times in a row running it
    EXHAUSTED = "exhausted"  # its worker died during its last allowed attempt


@dataclass(frozen=True)
class Verdict:
    kind: LockedVerdict
    last_error: str = ""


def verdict_for_locked(row: JobSnapshot, max_attempts: int, max_crashes: int) -> Verdict:
    """What to do with a row this worker has just locked, before running it."""
    if row.crashes >= max_crashes:
        return Verdict(
            LockedVerdict.POISON,
            f"its worker died while running this job {row.crashes} times in a row, so the "
            f"job is treated as poison and failed for good. Fix it, then `tomqueue retry "
            f"{row.id}` or delete it.\nlast crash: {row.last_error or 'unknown'}",
        )
    if row.attempts >= max_attempts:
        return Verdict(
            LockedVerdict.EXHAUSTED,
            f"failed for good: {row.attempts} of {max_attempts} attempts used; the last one "
            f"ended with its worker's death.\nlast crash: {row.last_error or 'unknown'}",
        )
    return Verdict(LockedVerdict.RUN)
