"""WorkerLease: a PostgreSQL advisory lock that proves this worker is alive.

The lock is session-level, held on a connection of its own: it disappears the moment the
process dies (the kernel closes the socket, PostgreSQL ends the session), so other workers
can tell "its worker crashed" from "it is still running" without guessing from ages.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading

from sqlalchemy import Connection, create_engine, pool, text

from tomqueue.database import ADVISORY_NAMESPACE, retry_on_disconnect
from tomqueue.settings import mask_url

log = logging.getLogger(__name__)


class WorkerLease:
    """Holds ``pg_advisory_lock(namespace, key)`` for as long as the worker lives."""

    def __init__(self, database_url: str, check_interval: float = 0.5) -> None:
        self.database_url = database_url
        self.key = secrets.randbelow(2**31 - 2) + 1
        self.name = f"{socket.gethostname()} pid:{os.getpid()} key:{self.key}"
        self.check_interval = check_interval
        self._engine = create_engine(database_url, poolclass=pool.NullPool)
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take the lock (blocking until the database answers), then keep watch over it."""
        retry_on_disconnect(self._take, "take the worker lease", self.database_url, attempts=None)
        self._thread = threading.Thread(target=self._watch, name="tomqueue-lease", daemon=True)
        self._thread.start()

    def _take(self) -> None:
        with self._lock:
            while True:
                conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :key)"),
                    {"ns": ADVISORY_NAMESPACE, "key": self.key},
                ).scalar_one()
                if got:
                    self._conn = conn
                    log.info("worker lease taken: %s", self.name)
                    return
                conn.close()
                # another live worker has this key: pick another (rows are not ours yet)
                self.key = secrets.randbelow(2**31 - 2) + 1
                self.name = f"{socket.gethostname()} pid:{os.getpid()} key:{self.key}"

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval):
            try:
                with self._lock:
                    assert self._conn is not None
                    self._conn.execute(text("SELECT 1"))
            except Exception as exc:
                log.warning(
                    "worker lease connection to %s lost (%s); taking it again",
                    mask_url(self.database_url),
                    type(exc).__name__,
                )
                self._discard()
                try:
                    retry_on_disconnect(
                        self._retake,
                        "take the worker lease again",
                        self.database_url,
                        attempts=None,
                        max_delay=0.5,  # well inside the sweepers' orphan grace
                        should_stop=self._stop.is_set,
                    )
                except Exception:
                    log.exception("could not take the worker lease again")

    def _retake(self) -> None:
        """After a lost connection, take the same key, so rows we hold stay ours."""
        with self._lock:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, :key)"),
                {"ns": ADVISORY_NAMESPACE, "key": self.key},
            ).scalar_one()
            if not got:
                conn.close()
                raise RuntimeError("lease key taken by another session")
            self._conn = conn
            log.info("worker lease taken again: %s", self.name)

    def _discard(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:
                log.debug("ignored error closing a lost lease connection")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # ends the session: the advisory lock goes with it
            except Exception:
                log.debug("ignored error closing the lease connection")
        self._engine.dispose()
