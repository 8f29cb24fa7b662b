"""Unique jobs at enqueue: which id each job given to ``enqueue_many`` comes back as.

The unique index (migration 0006) decides what is written: a unique job whose twin (same
class, same key) waits to run is skipped by ``INSERT ... ON CONFLICT DO NOTHING``. This
module turns the rows written into one id per job given, in order: a written row's own id,
or the waiting twin's. A twin can start running between the insert that skipped the job
and the read that looks for it; then the job is written again (it has no waiting twin any
more), which the index makes safe however many processes race.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import NewJob

MAX_ROUNDS = 5  # a twin would have to start running between insert and read this often


class UniqueEnqueueError(RuntimeError):
    """A unique job kept finding its twin gone between writing and reading (never seen)."""


def resolve_ids(
    new_jobs: Sequence[NewJob],
    written: list[JobSnapshot],
    waiting_twins: Callable[[Sequence[str]], dict[str, int]],
    write_again: Callable[[Sequence[NewJob]], list[JobSnapshot]],
) -> list[int]:
    """One id per job in ``new_jobs``; rows written by ``write_again`` are added to
    ``written`` (the caller announces them)."""
    plain = iter([row.id for row in written if row.unique_key is None])
    ids_by_key = {row.unique_key: row.id for row in written if row.unique_key is not None}
    for _ in range(MAX_ROUNDS):
        missing = sorted({job.unique_key for job in new_jobs if job.unique_key} - set(ids_by_key))
        if not missing:
            break
        ids_by_key.update(waiting_twins(missing))
        gone = [key for key in missing if key not in ids_by_key]
        if gone:
            first_of = {job.unique_key: job for job in reversed(new_jobs) if job.unique_key}
            again = write_again([first_of[key] for key in gone])
            written.extend(again)
            ids_by_key.update({row.unique_key: row.id for row in again if row.unique_key})
    else:
        raise UniqueEnqueueError(
            f"unique jobs {missing} could not be written or found after {MAX_ROUNDS} tries"
        )
    return [ids_by_key[job.unique_key] if job.unique_key else next(plain) for job in new_jobs]
