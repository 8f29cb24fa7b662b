"""CallerTransaction: a transaction that enqueue writes into but neither SQLAlchemy nor
tomqueue owns (a Django connection's, for ``tomqueue.contrib.django``).

``session=`` covers SQLAlchemy's own sessions. Code whose transaction lives elsewhere
hands ``App.enqueue_many(..., caller=...)`` an object with two methods: ``run`` executes
one of the store's statements (already in psycopg's ``%(name)s`` style) on the caller's
connection, inside its transaction, and returns the rows; ``on_commit`` defers the
announcement until that transaction commits (at once if there is none) and forgets it
if the transaction, or the savepoint that wrote the rows, rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol


class CallerTransaction(Protocol):
    """The caller's connection and transaction, as the enqueue stack uses them."""

    def run(self, sql: str, params: Mapping[str, object]) -> list[dict[str, Any]]:
        """One statement (psycopg's ``%(name)s`` parameters) in the caller's transaction;
        its rows by column name, timestamps timezone-aware."""
        ...

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the caller's transaction commits; never on rollback."""
        ...
