"""Prefix binding: a database's jobs belong to one TOMQUEUE_PREFIX, recorded in tomqueue_meta.

Rows carry no prefix, and the sweeps, the deferred manager and the operator commands read
every row of ``tomqueue_jobs``. Two prefixes on one database would therefore release each
other's jobs to queues nobody of theirs consumes, and recover or fail jobs they do not
own. So the database records one prefix: the first process to use it (or ``tomqueue
migrate``) claims it, and a process under any other prefix refuses to start, saying how
to fix it. ``App.ensure_prefix_bound`` runs the check once per process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg.errors
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from tomqueue.errors import ConfigurationError, TomQueueError
from tomqueue.schema import HISTORY_TABLE, JOBS_TABLE, META_TABLE

PREFIX_KEY = "prefix"

# Claim and read back in one round trip. The SELECT runs on the statement's snapshot: it
# sees a prefix committed before, not one this INSERT just added (RETURNING gives that).
# ``newest`` is never read, but naming them makes a database without the newest table and
# column a process writes (migrations 0004 and 0006) fail here, at start, saying to
# migrate, rather than every finished job's delete or every enqueue failing later.
_CLAIM = text(
    """WITH newest AS (SELECT 1 FROM tomqueue_job_history LIMIT 0),
    newest_column AS (SELECT unique_key FROM tomqueue_jobs LIMIT 0),
    claimed AS (
        INSERT INTO tomqueue_meta (key, value) VALUES (:key, :prefix)
        ON CONFLICT (key) DO NOTHING
        RETURNING value
    )
    SELECT value FROM claimed
    UNION ALL
    SELECT value FROM tomqueue_meta WHERE key = :key"""
)
_READ = text("SELECT value FROM tomqueue_meta WHERE key = :key")
_READ_FOR_UPDATE = text("SELECT value FROM tomqueue_meta WHERE key = :key FOR UPDATE")
_RECORD = text(
    """INSERT INTO tomqueue_meta (key, value) VALUES (:key, :prefix)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"""
)
# pending rows are counted up to this many, for the refusal message
_PENDING_SHOWN = 10_000
_PENDING = text(
    """SELECT count(*) FROM (
        SELECT 1 FROM tomqueue_jobs WHERE failed_at IS NULL LIMIT 10001
    ) AS pending"""
)
_LOCK_TIMEOUT_SECONDS = 10


def mismatch_message(bound: str, prefix: str) -> str:
    return (
        f"this database's jobs belong to prefix {bound!r} (recorded in {META_TABLE}); "
        f"this process uses {prefix!r}; use one database per prefix, or set "
        f"TOMQUEUE_PREFIX={bound} (or rebind with `tomqueue migrate --rebind-prefix` when "
        "no job is pending)"
    )


def bound_prefix(conn: Connection) -> str | None:
    """The prefix the database is bound to, or None if no process has claimed it yet."""
    value = conn.execute(_READ, {"key": PREFIX_KEY}).scalar()
    return None if value is None else str(value)


def claim_prefix(engine: Engine, prefix: str) -> str:
    """Bind the database to ``prefix`` unless it is bound already; the prefix it is bound to.

    Atomic: of processes racing on an unbound database, one prefix wins and every one of
    them reads the winner.
    """
    with _schema_checked(), engine.begin() as conn:
        value = conn.execute(_CLAIM, {"key": PREFIX_KEY, "prefix": prefix}).scalar()
        if value is None:
            # another transaction claimed it after this statement's snapshot was taken
            return str(conn.execute(_READ, {"key": PREFIX_KEY}).scalar_one())
        return str(value)


def require_prefix(engine: Engine, prefix: str) -> None:
    """Claim the database for ``prefix``, or raise ConfigurationError if it has another."""
    bound = claim_prefix(engine, prefix)
    if bound != prefix:
        raise ConfigurationError(mismatch_message(bound, prefix))


@dataclass(frozen=True)
class Rebinding:
    """What ``rebind_prefix`` did: the prefix recorded before (None: none) and now."""

    previous: str | None
    prefix: str


def rebind_prefix(engine: Engine, prefix: str) -> Rebinding:
    """Bind the database to ``prefix`` whatever it was bound to, if no job is pending.

    A pending job of the old prefix would be announced on queues the new prefix's workers
    do not read, so it must run or be deleted first; failed jobs wait for a person and
    move over. The jobs table is locked against writes while this decides, so no job can
    be enqueued between the count and the change.
    """
    with _schema_checked(), engine.begin() as conn:
        conn.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT_SECONDS}s'"))
        try:
            conn.execute(text("LOCK TABLE tomqueue_jobs IN SHARE MODE"))
        except OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            raise TomQueueError(
                f"could not lock {JOBS_TABLE} within {_LOCK_TIMEOUT_SECONDS} s to rebind the "
                "prefix: a long transaction is writing to it; try again"
            ) from exc
        previous = conn.execute(_READ_FOR_UPDATE, {"key": PREFIX_KEY}).scalar()
        previous = None if previous is None else str(previous)
        if previous != prefix:
            pending = int(conn.execute(_PENDING).scalar_one())
            if pending:
                shown = f"more than {_PENDING_SHOWN}" if pending > _PENDING_SHOWN else pending
                raise ConfigurationError(
                    f"cannot rebind this database to prefix {prefix!r}: {shown} pending "
                    f"job(s) (failed_at IS NULL) belong to prefix {previous!r}; let them run "
                    f"under TOMQUEUE_PREFIX={previous} or delete them, then rebind"
                )
            conn.execute(_RECORD, {"key": PREFIX_KEY, "prefix": prefix})
    return Rebinding(previous, prefix)


@contextmanager
def _schema_checked() -> Iterator[None]:
    """Turns "tomqueue_meta (or tomqueue_job_history, or the unique_key column) does not
    exist" into an error that says to migrate."""
    try:
        yield
    except ProgrammingError as exc:
        if isinstance(exc.orig, psycopg.errors.UndefinedColumn):
            raise ConfigurationError(
                f"the {JOBS_TABLE} table has no unique_key column: its schema is older than "
                "this tomqueue; run `tomqueue migrate`"
            ) from exc
        if not isinstance(exc.orig, psycopg.errors.UndefinedTable):
            raise
        missing = HISTORY_TABLE if HISTORY_TABLE in str(exc.orig) else META_TABLE
        raise ConfigurationError(
            f"the database has no {missing} table: its schema is older than this "
            "tomqueue; run `tomqueue migrate`"
        ) from exc
