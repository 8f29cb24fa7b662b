"""Notifications held per SQLAlchemy session transaction until the outermost commit.

Pending notifications live in ``session.info``, never in a process-global list (the Ruby
original's bug: one thread's rollback could drop, or publish, another thread's jobs).

Savepoints: SQLAlchemy fires ``after_commit`` when a savepoint is released and
``after_rollback`` when one is rolled back, so listening to those alone would publish an
outer transaction's jobs before its real commit, or drop them with an inner rollback.
Rows are therefore held by the transaction (or savepoint) that wrote them: a savepoint
that is released hands its rows to its parent, one that is rolled back drops only its
own rows (and those of the savepoints it contained), and only the outermost commit
publishes.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from tomqueue.snapshot import JobSnapshot

_PENDING = "tomqueue.pending_rows"
_OUTCOME = "tomqueue.transaction_outcome"
_HOOKED = "tomqueue.hooked"

Flush = Callable[[list[JobSnapshot]], None]
Held = list[tuple[JobSnapshot, Flush]]


def hold_until_commit(session: Session, rows: list[JobSnapshot], flush: Flush) -> None:
    """Publish ``rows`` through ``flush`` once the outermost transaction of ``session``
    commits; forget them if the transaction, or the savepoint that wrote them, rolls back."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:  # not in a transaction: the rows were committed already
        flush(rows)
        return
    pending: dict[SessionTransaction, Held] = session.info.setdefault(_PENDING, {})
    pending.setdefault(transaction, []).extend((row, flush) for row in rows)
    if session.info.get(_HOOKED):
        return
    session.info[_HOOKED] = True
    event.listen(session, "after_commit", _after_commit)
    event.listen(session, "after_rollback", _after_rollback)
    event.listen(session, "after_transaction_end", _after_transaction_end)


def _after_commit(session: Session) -> None:
    # fired for a released savepoint too; the transaction_end that follows says which
    session.info[_OUTCOME] = "commit"


def _after_rollback(session: Session) -> None:
    session.info[_OUTCOME] = "rollback"


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    outcome = session.info.pop(_OUTCOME, None)
    pending: dict[SessionTransaction, Held] | None = session.info.get(_PENDING)
    if not pending:
        return
    held = pending.pop(transaction, None)
    if held is None:
        return
    if outcome != "commit":
        return  # rolled back (or ended without a commit): what it wrote is gone
    if transaction.parent is not None:
        pending.setdefault(transaction.parent, []).extend(held)  # a released savepoint
        return
    by_flush: dict[int, tuple[Flush, list[JobSnapshot]]] = {}
    for row, flush in held:
        by_flush.setdefault(id(flush), (flush, []))[1].append(row)
    for flush, flushed_rows in by_flush.values():
        flush(flushed_rows)
