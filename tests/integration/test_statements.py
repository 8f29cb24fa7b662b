"""Database round trips per job, counted: the worker's hot path is two statements."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

import tomqueue
from tests.conftest import wait_until
from tests.jobs import Record
from tomqueue.default_app import default_app

pytestmark = pytest.mark.integration


def test_a_successful_job_costs_two_statements_and_no_transaction(tq, run_worker):
    tomqueue.configure(sweep_interval=timedelta(hours=1))  # keep the sweeper out of the count
    ids = tomqueue.enqueue_many([Record(f"s{n}") for n in range(50)])
    runtime = default_app()
    statements: list[str] = []
    in_transaction: list[bool] = []

    def through_sqlalchemy(conn, cursor, sql, params, context, many):
        statements.append(sql)
        in_transaction.append(not conn.connection.dbapi_connection.autocommit)

    event.listen(runtime.engine, "before_cursor_execute", through_sqlalchemy)
    executor = runtime.store.executor
    on_driver = executor._on_driver  # the one way the hot statements reach psycopg

    @contextmanager
    def through_driver(sql, params):
        statements.append(sql)
        with on_driver(sql, params) as cursor:
            in_transaction.append(not cursor.connection.autocommit)
            yield cursor

    executor._on_driver = through_driver
    run_worker(concurrency=2)
    wait_until(lambda: all(tq.job(i) is None for i in ids), timeout=30)
    locks = [s for s in statements if s.lstrip().startswith("UPDATE tomqueue_jobs SET locked_at")]
    deletes = [s for s in statements if s.lstrip().startswith("DELETE FROM tomqueue_jobs")]
    assert len(locks) == 50 and len(deletes) == 50
    assert len(statements) == 100, statements[:5]
    assert not any(in_transaction)  # autocommit: no BEGIN/COMMIT round trips
