"""Database round trips per job, counted: the worker's hot path is two statements, the
success delete recording the job's history row (tomqueue.status) in the same one."""

import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

import tomqueue
from tests.conftest import wait_until
from tests.jobs import InOrder, Record, Roomy
from tomqueue.default_app import default_app
from tomqueue.gates import serial_gate
from tomqueue.store import statements as sql_statements
from tomqueue.worker.gates import NOBODY_PARKED_FOR

pytestmark = pytest.mark.integration


def counted_statements(runtime) -> list[str]:
    """Every statement the runtime sends from now on (SQLAlchemy's and the hot path's)."""
    statements: list[str] = []

    def through_sqlalchemy(conn, cursor, sql, params, context, many):
        statements.append(sql)

    event.listen(runtime.engine, "before_cursor_execute", through_sqlalchemy)
    executor = runtime.store.executor
    on_driver = executor._on_driver

    @contextmanager
    def through_driver(sql, params):
        statements.append(sql)
        with on_driver(sql, params) as cursor:
            yield cursor

    executor._on_driver = through_driver
    return statements


def test_a_run_of_one_serial_keys_jobs_costs_three_statements_a_job(tq, run_worker):
    tomqueue.configure(sweep_interval=timedelta(hours=1))  # keep the sweeper out of the count
    ids = tomqueue.enqueue_many([InOrder("chain", n) for n in range(30)])
    # the first is announced; the rest are written parked at their key, unannounced
    gate = serial_gate("chain").name
    assert tq.scalar("SELECT count(*) FROM tomqueue_jobs WHERE parked_on = %s", gate) == 29
    assert tq.queue_depth(default_app().topology.queue_for(tomqueue.NORMAL_PRIORITY)) == 1
    statements = counted_statements(default_app())
    run_worker(concurrency=2)
    wait_until(lambda: all(tq.job(i) is None for i in ids), timeout=30)
    starts = tq.sql(
        "SELECT detail FROM test_runs WHERE label = 'chain' AND event = 'start' ORDER BY id"
    )
    assert [int(detail) for (detail,) in starts] == list(range(30))
    statements = [s for s in statements if s != sql_statements.NAMED_QUEUES]
    # lock, delete, wake the next (the key's lock passed on, never let go); the first two
    # take the key's turn, the last lets the key go and looks for anyone parked
    assert len([s for s in statements if s == sql_statements.SERIAL_TAKE]) == 2
    assert len(statements) <= 3 * 30 + 5, len(statements)


def test_a_limit_that_does_not_bind_costs_no_statement_per_job(tq, run_worker):
    tomqueue.configure(sweep_interval=timedelta(hours=1))
    jobs = 300
    ids = tomqueue.enqueue_many([Roomy(f"r{n}") for n in range(jobs)])
    statements = counted_statements(default_app())
    started = time.monotonic()
    run_worker(concurrency=2)
    wait_until(lambda: all(tq.job(i) is None for i in ids), timeout=60)
    elapsed = time.monotonic() - started
    statements = [s for s in list(statements) if s != sql_statements.NAMED_QUEUES]
    takes = [s for s in statements if s == sql_statements.GATE_TAKE]
    looks = [s for s in statements if s == sql_statements.PARKED_AT]
    # (a thread that finds no more messages lets its kept slot go: a leave and a look)
    leaves = [s for s in statements if s == sql_statements.GATE_LEAVE]
    assert 1 <= len(takes) <= 4  # a slot per thread, kept from job to job
    assert len(leaves) <= len(takes)
    # a look at most every NOBODY_PARKED_FOR seconds per thread, not one a job
    assert len(looks) <= 2 * (elapsed / NOBODY_PARKED_FOR + 1) + len(leaves), (looks, elapsed)
    assert len(looks) < jobs / 2
    assert len(statements) == 2 * jobs + len(takes) + len(looks) + len(leaves)


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
    locks = [s for s in statements if "UPDATE tomqueue_jobs SET locked_at" in s]
    deletes = [s for s in statements if "DELETE FROM tomqueue_jobs" in s]
    assert all("INSERT INTO tomqueue_job_history" in s for s in deletes)
    assert len(locks) == 50 and len(deletes) == 50
    # a worker serving every queue lists the named queues at start and at each sweep: not
    # per job
    statements = [s for s in statements if s != sql_statements.NAMED_QUEUES]
    assert len(statements) == 100, statements[:5]
    assert not any(in_transaction)  # autocommit: no BEGIN/COMMIT round trips
    history = tq.sql("SELECT outcome, count(*) FROM tomqueue_job_history GROUP BY outcome")
    assert history == [("succeeded", 50)]


def test_a_batch_of_deletes_is_one_statement_that_records_every_history_row(tq):
    from tomqueue.progress import StatusReport
    from tomqueue.store.values import Ended, NewJob
    from tomqueue.store.worker import DeleteRequest

    store = default_app().store
    rows = store.enqueue.insert_committed([NewJob("{}", 0, None, None)] * 3)
    for n, row in enumerate(rows):
        store.worker.lock_for_run(row.id, row.digest, f"w run:{n}", 5)
    sent: list[str] = []
    on_driver = store.executor._on_driver

    @contextmanager
    def through_driver(sql, params):
        sent.append(sql)
        with on_driver(sql, params) as cursor:
            yield cursor

    store.executor._on_driver = through_driver
    requests = [
        DeleteRequest(rows[0].id, "w run:0", Ended("A", 60.0, StatusReport(5, 10, {"k": 1}))),
        DeleteRequest(rows[1].id, "w run:1", Ended("B", 120.0)),
        DeleteRequest(rows[2].id, "not the holder", Ended("C", 60.0)),
    ]
    assert store.worker._delete_many(requests) == [True, True, False]
    assert len(sent) == 1
    history = tq.sql(
        "SELECT job_id, class_name, progress_value, progress_total, fields,"
        " expires_at - finished_at FROM tomqueue_job_history ORDER BY job_id"
    )
    assert history == [
        (rows[0].id, "A", 5, 10, {"k": 1}, timedelta(seconds=60)),
        (rows[1].id, "B", None, None, {}, timedelta(seconds=120)),
    ]
    assert tq.job(rows[2].id) is not None
