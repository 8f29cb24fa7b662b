"""Notifications held per SQLAlchemy session until its transaction commits.

Pending notifications live in ``session.info``, never in a process-global list (the Ruby
original's bug: one thread's rollback could drop, or publish, another thread's jobs).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from tomqueue.snapshot import JobSnapshot

_PENDING = "tomqueue.pending_rows"
_HOOKED = "tomqueue.hooked"

Flush = Callable[[list[JobSnapshot]], None]


def hold_until_commit(session: Session, rows: list[JobSnapshot], flush: Flush) -> None:
    """Publish ``rows`` through ``flush`` once ``session`` commits; forget them on rollback.

    A savepoint rolled back inside a committed transaction still publishes its rows: the
    worker finds no row and drops the notification, so the result is the same.
    """
    pending: list[tuple[JobSnapshot, Flush]] = session.info.setdefault(_PENDING, [])
    pending.extend((row, flush) for row in rows)
    if session.info.get(_HOOKED):
        return
    session.info[_HOOKED] = True
    event.listen(session, "after_commit", _after_commit)
    event.listen(session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    pending: list[tuple[JobSnapshot, Flush]] = session.info.pop(_PENDING, [])
    by_flush: dict[int, tuple[Flush, list[JobSnapshot]]] = {}
    for row, flush in pending:
        by_flush.setdefault(id(flush), (flush, []))[1].append(row)
    for flush, rows in by_flush.values():
        flush(rows)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
