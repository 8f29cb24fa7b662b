"""Executor: how the store's statements reach PostgreSQL; the one place holding connections.

Each way of running a statement exists for a reason:
- ``hot_rows``, ``hot_count``: the worker's per-job statements, on the calling thread's
  own autocommit connection, straight through psycopg (compiled once from ``:name`` to
  ``%(name)s``);
- ``hot_text``: a rarer worker statement on that same connection, through SQLAlchemy;
- ``read``, ``write``, ``autocommit``, ``transaction``: short work on pooled connections,
  none left open while a job runs;
- ``committed``: one statement in a transaction of its own, retried on a dead connection;
- ``in_caller``: a statement in the caller's connection, so in the caller's transaction.
"""

from __future__ import annotations

import functools
import select
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.exc import DBAPIError, OperationalError

from tomqueue.store.values import Record

Params = Mapping[str, object]


@dataclass(frozen=True)
class Rows:
    """What a statement gave back: its rows (by column name) and how many it touched."""

    records: list[Record]
    rowcount: int


@functools.cache
def _clause(sql: str) -> TextClause:
    """``text()`` parses its SQL for binds; statements are constants, so parse each once."""
    return text(sql)


def _run(conn: Connection, sql: str, params: Params | None) -> Rows:
    result = conn.execute(_clause(sql), params or {})
    records = cast("list[Record]", list(result.mappings())) if result.returns_rows else []
    return Rows(records, result.rowcount)


def _closed_by_server(conn: Connection) -> bool:
    """True if an idle connection's socket has something to read: for an idle PostgreSQL
    connection that is the server's goodbye (or, rarely, a notice: then a healthy
    connection is replaced, which costs a reconnect and nothing else). No round trip."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection) or driver.closed:
        return True
    try:
        readable, _, _ = select.select([driver.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


class Transaction:
    """Statements on one connection, in one transaction (``Executor.transaction``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Params | None = None) -> Rows:
        return _run(self._conn, sql, params)


class Executor:
    """Runs ``tomqueue.store.statements`` on one Engine; shared by every per-caller store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # single-statement operations skip BEGIN/COMMIT: one round trip instead of three
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._local = threading.local()
        self._driver_sql: dict[str, str] = {}

    # -- the worker's hot connection --------------------------------------------------------

    def hot_rows(self, sql: str, params: Params) -> list[Record]:
        """The rows of one hot-path statement (see ``_on_driver``)."""
        with self._on_driver(sql, params) as cursor:
            return cast("list[Record]", cursor.fetchall())

    def hot_count(self, sql: str, params: Params) -> int:
        """How many rows one hot-path statement touched (see ``_on_driver``)."""
        with self._on_driver(sql, params) as cursor:
            return cursor.rowcount

    @contextmanager
    def _on_driver(self, sql: str, params: Params) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """Run one statement of the worker's hot path on the thread's own connection,
        through the driver directly: SQLAlchemy's per-statement work costs more CPU than the
        statement here. A lost connection comes out as SQLAlchemy's OperationalError, the
        connection invalidated, so ``retry_on_disconnect`` treats it as on every path.
        (Two methods rather than one that looks at ``cursor.description``: psycopg builds
        that anew on each look, which costs as much as the rest of the call.)"""
        driver_sql = self._driver_sql.get(sql) or self._compile(sql)
        with self._hot() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            try:
                with driver.cursor(row_factory=dict_row) as cursor:
                    cursor.execute(driver_sql, params)
                    yield cursor
            except psycopg.OperationalError as exc:
                conn.invalidate(exc)
                raise OperationalError(
                    driver_sql, dict(params), exc, connection_invalidated=True
                ) from exc

    def driver_sql(self, sql: str) -> str:
        """``sql`` as psycopg takes it (``%(name)s`` parameters), compiled once."""
        return self._driver_sql.get(sql) or self._compile(sql)

    def _compile(self, sql: str) -> str:
        """SQLAlchemy's own compiler, once per statement: binds become %(name)s, a literal
        % becomes %%, exactly as SQLAlchemy would send it to psycopg."""
        driver_sql = self._driver_sql[sql] = str(_clause(sql).compile(dialect=self.engine.dialect))
        return driver_sql

    def hot_text(self, sql: str, params: Params) -> Rows:
        """A statement on the thread's hot connection, through SQLAlchemy (off the per-job
        budget: only failures take this path)."""
        with self._hot() as conn:
            return _run(conn, sql, params)

    @contextmanager
    def _hot(self) -> Iterator[Connection]:
        """The calling thread's own autocommit connection, kept between calls.

        Worker slots lock and finish a job every few milliseconds; checking a connection
        out of the pool and resetting it each time costs more CPU than the statement. A
        connection found dead is dropped, and the caller's retry opens a new one.
        """
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._local.conn = self._autocommit.connect()
        try:
            yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or conn.invalidated:
                self._local.conn = None
                conn.close()
            raise

    def drop_hot(self) -> None:
        """Close the calling thread's hot connection (the next call opens another): what
        ends its session, and with it every advisory lock the session holds."""
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.invalidate()
            conn.close()

    # -- short work on pooled connections ---------------------------------------------------

    def read(self, sql: str, params: Params | None = None) -> list[Record]:
        """Rows of one query; the connection goes back to the pool at once."""
        with self.engine.connect() as conn:
            return _run(conn, sql, params).records

    def write(self, sql: str, params: Params | None = None) -> Rows:
        """One statement in a short transaction."""
        with self.engine.begin() as conn:
            return _run(conn, sql, params)

    def autocommit(self, sql: str, params: Params | None = None) -> Rows:
        """One statement with no BEGIN/COMMIT round trips."""
        with self._autocommit.connect() as conn:
            return _run(conn, sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Several statements in one short transaction, committed at the end (rolled back
        on an error). Reads in it share one snapshot and one ``now()``."""
        with self.engine.begin() as conn:
            yield Transaction(conn)

    def committed(self, sql: str, params: Params, tries: int = 3) -> Rows:
        """One statement committed on its own: autocommit, so one round trip, not three
        (BEGIN, the statement, COMMIT). A single statement is atomic, so this is as safe
        as the transaction it replaces.

        A pooled connection that the server has closed (a PostgreSQL restart empties the
        pool's connections) is found *before* the statement is sent, by a zero-wait poll of
        its socket, and replaced: nothing was sent, so nothing can be written twice. A
        failure after sending is raised, never retried: its outcome is unknown (the same
        rule as for a failed COMMIT).
        """
        for attempt in range(tries):
            with self._autocommit.connect() as conn:
                if _closed_by_server(conn) and attempt < tries - 1:
                    conn.invalidate()
                    continue
                return _run(conn, sql, params)
        raise AssertionError("unreachable")

    @staticmethod
    def in_caller(conn: Connection, sql: str, params: Params) -> Rows:
        """One statement in the caller's connection: it commits or rolls back with the
        caller's transaction, and nothing here commits."""
        return _run(conn, sql, params)
