"""Leadership: one active deferred manager per database and prefix, the others standing by.

The leader holds a session-level advisory lock on a connection of its own; when its process
dies, PostgreSQL drops the lock and a standby takes over within one retry interval. When
its host is lost instead, the server ends the silent session within ``lease_timeout``
(tomqueue.database.LeaseTimings), and the leader, whose check goes unanswered, steps down
within a third of that: before a standby can take the lock, so there are never two leaders.
"""

from __future__ import annotations

import logging
import zlib
from datetime import timedelta

from sqlalchemy import Connection

from tomqueue.database import (
    LeaseTimings,
    check_lease_session,
    close_quietly,
    describe_connection_error,
    lease_engine,
    open_lease_session,
    try_advisory_lock,
)
from tomqueue.settings import Settings

log = logging.getLogger(__name__)


def leader_key(prefix: str) -> int:
    """Advisory key for a prefix, away from the small keys used for migrations."""
    return 1000 + (zlib.crc32(f"deferred:{prefix}".encode()) % (2**31 - 2000))


class Leadership:
    """The deferred manager's lock; not thread-safe (the manager's loop alone uses it)."""

    def __init__(
        self, database_url: str, prefix: str, lease_timeout: timedelta = Settings.lease_timeout
    ) -> None:
        self.key = leader_key(prefix)
        self.timings = LeaseTimings(lease_timeout.total_seconds())
        self._engine = lease_engine(database_url, self.timings)
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """Become leader if nobody else is; never blocks longer than the lease bounds."""
        if self._conn is not None:
            return True
        conn = open_lease_session(self._engine, self.timings)
        if not try_advisory_lock(conn, self.key, self.timings, "take the leadership"):
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        """Check the lock's session answers within the deadline; if not, step down.

        Call it at least every ``timings.check_interval``: the check is also what keeps a
        live leader's session from being ended as idle."""
        if self._conn is None:
            return False
        try:
            check_lease_session(self._conn, self.timings, "check the leadership")
            return True
        except Exception as exc:
            log.warning(
                "deferred manager lost its leadership (%s): stepping down",
                describe_connection_error(exc),
            )
            self.release()
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            close_quietly(conn)

    def close(self) -> None:
        self.release()
        self._engine.dispose()
