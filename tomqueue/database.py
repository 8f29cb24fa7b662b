"""Database plumbing: engines, the advisory-lock namespace, retry on lost connections, and
the bounds that make a lease session die, and its holder notice, when a host is lost."""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import psycopg
from sqlalchemy import Connection, Engine, create_engine, pool, text
from sqlalchemy.exc import DBAPIError, OperationalError

from tomqueue.errors import ConfigurationError, DatabaseUnavailableError
from tomqueue.settings import mask_url

log = logging.getLogger(__name__)

T = TypeVar("T")

# classid of every advisory lock tomqueue takes ("tomq" in ASCII): workers' liveness leases
# and the deferred manager's leadership live in this namespace.
ADVISORY_NAMESPACE = 0x746F6D71
MIGRATION_LOCK_KEY = 1  # the key under that namespace that `tomqueue migrate` takes


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """A pooled engine; no pre-ping (a round trip per job): lost connections are retried."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=3600,
        connect_args={"connect_timeout": 5},
    )


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean "the server went away", worth a reconnect and retry."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | DeadlineExceededError)


def retry_on_disconnect(
    operation: Callable[[], T],
    what: str,
    url: str,
    attempts: int | None = 8,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
    should_stop: Callable[[], bool] | None = None,
) -> T:
    """Run ``operation``, retrying with backoff while the database is unreachable.

    ``attempts=None`` retries until ``should_stop()`` says otherwise: workers use that so a
    PostgreSQL restart costs them a pause, never the outcome of a job they have run.
    """
    delay = first_delay
    tries = 0
    while True:
        tries += 1
        try:
            return operation()
        except (OperationalError, DBAPIError, DeadlineExceededError) as exc:
            if not is_connection_error(exc):
                raise
            out_of_tries = attempts is not None and tries >= attempts
            if out_of_tries or (should_stop is not None and should_stop()):
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {mask_url(url)} is unreachable while trying to {what}: "
                    f"{describe_connection_error(exc)}"
                ) from exc
            log.warning(
                "PostgreSQL at %s unreachable while trying to %s; retrying in %.1fs",
                mask_url(url),
                what,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, max_delay)


def describe_connection_error(exc: BaseException) -> str:
    """A short name for a lost-connection error, for one-line log messages."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return type(exc.orig).__name__
    if isinstance(exc, DeadlineExceededError):
        return str(exc)
    return type(exc).__name__


# -- lease sessions: bounded in time, so that a lost host's lease dies and its holder knows --


class DeadlineExceededError(DatabaseUnavailableError):
    """PostgreSQL did not answer in time; the connection was shut down."""


@dataclass(frozen=True)
class LeaseTimings:
    """Every bound on a lease or leadership session, derived from ``lease_timeout``.

    A lease session that hears nothing for ``lease_timeout`` is ended by the server
    (``idle_session_timeout``), even when the holder's host is gone or a middlebox swallows
    its packets, where TCP alone would wait about two hours. The holder checks far more
    often than that (``check_interval``), so a live holder is never idle that long, and
    gives each check ``check_deadline``: check_interval + check_deadline < lease_timeout,
    so a partitioned holder knows it has lost the lease before the server can end the
    session and another process can take the lock.
    """

    lease_timeout: float  # seconds

    def __post_init__(self) -> None:
        if not self.lease_timeout > 0:
            raise ConfigurationError(
                f"lease_timeout must be a positive number of seconds, got {self.lease_timeout}"
            )

    @property
    def check_interval(self) -> float:
        """Seconds between checks: 0.5, or a sixth of the timeout if that is shorter."""
        return min(0.5, self.lease_timeout / 6)

    @property
    def check_deadline(self) -> float:
        """Seconds a check (or any call on a lease session) may take before the holder
        gives the session up."""
        return self.lease_timeout / 3

    @property
    def connect_timeout(self) -> int:
        """libpq counts whole seconds and takes anything under 2 as 2."""
        return max(2, math.ceil(self.lease_timeout / 3))

    @property
    def keepalives_idle(self) -> int:
        return max(1, int(self.lease_timeout / 3))

    @property
    def keepalives_count(self) -> int:
        return 3

    @property
    def keepalives_interval(self) -> int:
        """Idle + count x interval comes to about lease_timeout (whole seconds, at least 1)."""
        spare = self.lease_timeout - self.keepalives_idle
        return max(1, int(spare / self.keepalives_count))

    @property
    def timeout_ms(self) -> int:
        return max(1, round(self.lease_timeout * 1000))

    def client_options(self) -> dict[str, int]:
        """libpq connection parameters: the client's kernel gives up on a dead server."""
        return {
            "connect_timeout": self.connect_timeout,
            "keepalives": 1,
            "keepalives_idle": self.keepalives_idle,
            "keepalives_interval": self.keepalives_interval,
            "keepalives_count": self.keepalives_count,
            "tcp_user_timeout": self.timeout_ms,
        }

    def session_settings(self, server_version: int) -> dict[str, str]:
        """Server-side settings for this session, those the server's version knows.

        ``server_version`` is libpq's number (150004 for 15.4).
        """
        settings = {
            "tcp_keepalives_idle": f"{self.keepalives_idle}s",
            "tcp_keepalives_interval": f"{self.keepalives_interval}s",
            "tcp_keepalives_count": str(self.keepalives_count),
        }
        if server_version >= 120000:
            settings["tcp_user_timeout"] = f"{self.timeout_ms}ms"
        if server_version >= 140000:
            settings["idle_session_timeout"] = f"{self.timeout_ms}ms"
        return settings


def lease_engine(url: str, timings: LeaseTimings) -> Engine:
    """An engine for lease and leadership sessions: one connection each, never pooled
    (closing it must end the session, and with it the lock), with client keepalives."""
    return create_engine(url, poolclass=pool.NullPool, connect_args=timings.client_options())


_old_server_warned = threading.Event()


def open_lease_session(
    engine: Engine, timings: LeaseTimings, application_name: str | None = None
) -> Connection:
    """An autocommit connection whose session the server ends after ``lease_timeout`` of
    silence; the caller takes its advisory lock on it. ``application_name`` names the
    session in ``pg_stat_activity`` (a worker's lease name: who holds the lock, even
    while it runs nothing; PostgreSQL keeps its first 63 bytes)."""
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        version = psycopg_connection(conn).info.server_version
        settings = timings.session_settings(version)
        if application_name is not None:
            settings["application_name"] = application_name
        if "idle_session_timeout" not in settings and not _old_server_warned.is_set():
            _old_server_warned.set()
            log.warning(
                "PostgreSQL %s has no idle_session_timeout (14 or newer has): a lost "
                "host's lease ends only when TCP keepalives give up (about %ss)",
                version,
                timings.keepalives_idle + timings.keepalives_interval * timings.keepalives_count,
            )
        names = list(settings)
        query = "SELECT " + ", ".join(f"set_config(:n{i}, :v{i}, false)" for i in range(len(names)))
        params = {f"n{i}": name for i, name in enumerate(names)}
        params |= {f"v{i}": settings[name] for i, name in enumerate(names)}
        with SocketDeadline(conn, timings.check_deadline, "bound the lease session"):
            conn.execute(text(query), params)
    except BaseException:
        close_quietly(conn)
        raise
    return conn


def close_quietly(conn: Connection) -> None:
    """Close a connection that may already be broken; closing a lease session ends it."""
    try:
        conn.invalidate()
        conn.close()
    except Exception:
        log.debug("ignored error closing a lease connection", exc_info=True)


def psycopg_connection(conn: Connection) -> psycopg.Connection[object]:
    """The driver's connection under a SQLAlchemy one (the lease code needs its socket)."""
    dbapi = conn.connection.dbapi_connection
    if not isinstance(dbapi, psycopg.Connection):
        raise ConfigurationError(
            "tomqueue needs the psycopg driver (postgresql+psycopg://...) for its leases"
        )
    return dbapi


class SocketDeadline:
    """Bounds the calls made in a ``with`` block on one connection.

    A query on a half-open connection (the server's host is gone, or a partition swallows
    the packets) waits in recv forever: nothing comes back and nothing fails. When
    ``seconds`` pass first, a timer shuts the connection's socket down, which makes the
    blocked call fail at once; the block then raises DeadlineExceededError. The
    connection is dead afterwards: the caller discards it.
    """

    def __init__(self, conn: Connection, seconds: float, what: str) -> None:
        self.fd = psycopg_connection(conn).pgconn.socket
        self.seconds = seconds
        self.what = what
        self.expired = False
        self._finished = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> SocketDeadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._finished = True  # from here on the timer leaves the socket alone
        self._timer.cancel()
        if self.expired:
            # even if the call got its answer just in time, its socket is shut down now
            raise DeadlineExceededError(
                f"PostgreSQL did not answer within {self.seconds:.1f}s while trying to "
                f"{self.what}; the connection was shut down"
            ) from exc

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            # the fd is still the connection's (it is closed only after __exit__); fromfd
            # works on a duplicate, and shutdown acts on the socket both share
            with (
                contextlib.suppress(OSError),
                socket.fromfd(self.fd, socket.AF_INET, socket.SOCK_STREAM) as sock,
            ):
                sock.shutdown(socket.SHUT_RDWR)


def try_advisory_lock(conn: Connection, key: int, timings: LeaseTimings, what: str) -> bool:
    """Take the session-level advisory lock ``key`` on a lease session, within the check
    deadline; the connection is closed if the attempt fails (it is unusable then)."""
    try:
        with SocketDeadline(conn, timings.check_deadline, what):
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, :key)"),
                {"ns": ADVISORY_NAMESPACE, "key": key},
            ).scalar_one()
    except BaseException:
        close_quietly(conn)
        raise
    return bool(got)


def check_lease_session(conn: Connection, timings: LeaseTimings, what: str) -> None:
    """One round trip on a lease session within the check deadline: proves it is alive,
    and keeps the server from ending it as idle. Raises if it does not answer in time."""
    with SocketDeadline(conn, timings.check_deadline, what):
        conn.execute(text("SELECT 1"))
