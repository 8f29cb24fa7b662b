"""WorkerLease: a PostgreSQL advisory lock that proves this worker is alive.

The lock is session-level, held on a connection of its own: it disappears the moment the
process dies (the kernel closes the socket, PostgreSQL ends the session), so other workers
can tell "its worker crashed" from "it is still running" without guessing from ages.

A host that vanishes (power loss, partition) closes nothing, so the session is bounded in
time as well (tomqueue.database.LeaseTimings): the server ends it after ``lease_timeout``
of silence, and the holder, whose checks then go unanswered, knows within a third of that
that it no longer holds the lease (``held``), before anyone else can take its jobs over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import Connection

from tomqueue.database import (
    LeaseTimings,
    check_lease_session,
    close_quietly,
    describe_connection_error,
    lease_engine,
    open_lease_session,
    retry_on_disconnect,
    try_advisory_lock,
)
from tomqueue.settings import Settings, mask_url

log = logging.getLogger(__name__)


class WorkerLease:
    """Holds ``pg_advisory_lock(namespace, key)`` for as long as the worker lives."""

    def __init__(
        self, database_url: str, lease_timeout: timedelta = Settings.lease_timeout
    ) -> None:
        self.database_url = database_url
        self.key = secrets.randbelow(2**31 - 2) + 1
        self.name = f"{socket.gethostname()} pid:{os.getpid()} key:{self.key}"
        self.timings = LeaseTimings(lease_timeout.total_seconds())
        self._engine = lease_engine(database_url, self.timings)
        self._conn: Connection | None = None
        self._held = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _conn: the watcher and release() share it

    @property
    def held(self) -> bool:
        """Whether the lease is held now: false from the moment a check fails or goes
        unanswered until the lease is taken again. Cheap; safe from any thread."""
        return self._held.is_set()

    def wait_held(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lease to be held; True if it is."""
        return self._held.wait(timeout)

    def acquire(self) -> None:
        """Take the lock (blocking until the database answers), then keep watch over it."""
        retry_on_disconnect(self._take, "take the worker lease", self.database_url, attempts=None)
        self._thread = threading.Thread(target=self._watch, name="tomqueue-lease", daemon=True)
        self._thread.start()

    def _take(self) -> None:
        with self._lock:
            while True:
                conn = open_lease_session(self._engine, self.timings, self.name)
                if self._try_lock(conn, "take the worker lease"):
                    self._conn = conn
                    self._held.set()
                    log.info("worker lease taken: %s", self.name)
                    return
                close_quietly(conn)
                # another live worker has this key: pick another (rows are not ours yet)
                self.key = secrets.randbelow(2**31 - 2) + 1
                self.name = f"{socket.gethostname()} pid:{os.getpid()} key:{self.key}"

    def _try_lock(self, conn: Connection, what: str) -> bool:
        return try_advisory_lock(conn, self.key, self.timings, what)

    def _watch(self) -> None:
        interval = self.timings.check_interval
        lost_at: float | None = None
        failed_retakes = 0
        while not self._stop.wait(interval):
            if lost_at is None:
                try:
                    self._check()
                except Exception as exc:
                    # not ours any more, or soon not: the server ends a silent session
                    self._held.clear()
                    lost_at, failed_retakes = time.monotonic(), 0
                    self._discard()
                    log.warning(
                        "worker lease lost (%s; database %s): %s holds no lease until it "
                        "is taken again",
                        describe_connection_error(exc),
                        mask_url(self.database_url),
                        self.name,
                    )
                continue
            why_not = self._retake()
            if why_not is None:
                log.info(
                    "worker lease taken again after %.1fs: %s",
                    time.monotonic() - lost_at,
                    self.name,
                )
                lost_at = None
            else:
                failed_retakes += 1
                # once per outage: a partition can last long, and this runs twice a second
                (log.warning if failed_retakes == 1 else log.debug)(
                    "worker lease not taken again yet (%s); trying every %.1fs", why_not, interval
                )

    def _check(self) -> None:
        """Ask the lease session for an answer within the deadline (the watcher's beat)."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("the worker lease has no connection")
            check_lease_session(conn, self.timings, "check the worker lease")

    def _retake(self) -> str | None:
        """After a lost session, take the same key, so rows we hold stay ours; None once
        taken, else why not. The old session may hold the key a little longer: the server
        ends it within lease_timeout of its last message."""
        with self._lock:
            if self._stop.is_set():
                return "the worker is stopping"
            try:
                conn = open_lease_session(self._engine, self.timings, self.name)
                got = self._try_lock(conn, "take the worker lease again")
            except Exception as exc:
                return describe_connection_error(exc)
            if not got:
                close_quietly(conn)
                return f"key {self.key} still held by the old session"
            self._conn = conn
            self._held.set()
            return None

    def _discard(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            close_quietly(conn)

    def release(self) -> None:
        self._stop.set()
        self._held.clear()
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
