"""Leadership: one active deferred manager per database and prefix, the others standing by.

The leader holds a session-level advisory lock on a connection of its own; when its process
dies, PostgreSQL drops the lock and a standby takes over within one retry interval.
"""

from __future__ import annotations

import logging
import zlib

from sqlalchemy import Connection, create_engine, pool, text

from tomqueue.database import ADVISORY_NAMESPACE

log = logging.getLogger(__name__)


def leader_key(prefix: str) -> int:
    """Advisory key for a prefix, away from the small keys used for migrations."""
    return 1000 + (zlib.crc32(f"deferred:{prefix}".encode()) % (2**31 - 2000))


class Leadership:
    def __init__(self, database_url: str, prefix: str) -> None:
        self.key = leader_key(prefix)
        self._engine = create_engine(database_url, poolclass=pool.NullPool)
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """Become leader if nobody else is; never blocks."""
        if self._conn is not None:
            return True
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, :key)"),
                {"ns": ADVISORY_NAMESPACE, "key": self.key},
            ).scalar_one()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        """Check the lock's connection is alive; if not, leadership is lost."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.warning("deferred manager lost its leadership connection (%s)", type(exc).__name__)
            self.release()
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("ignored error closing the leadership connection")

    def close(self) -> None:
        self.release()
        self._engine.dispose()
