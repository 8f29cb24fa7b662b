"""Enqueue stack against real PostgreSQL and RabbitMQ."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

import tomqueue
from tests.conftest import wait_until
from tests.jobs import Record

pytestmark = pytest.mark.integration


def test_enqueue_commits_a_row_with_delayed_job_columns_and_announces_it(tq):
    job_id = tomqueue.enqueue(Record("a"), priority=3, queue="billing")
    row = tq.job(job_id)
    assert row["priority"] == 3 and row["queue"] == "billing" and row["attempts"] == 0
    assert row["failed_at"] is None and row["locked_by"] is None and row["last_error"] is None
    assert '"class":"tests.jobs.Record"' in row["handler"]
    assert row["run_at"].tzinfo is not None
    # priority 3: LOW, as in Delayed::Job, in the named queue's own RabbitMQ queue
    assert tq.queue_depth(f"{tq.prefix}.queue.billing.low") == 1
    assert tq.queue_depth(f"{tq.prefix}.balance.low") == 0


def test_priority_map_routes_to_level_queues(tq):
    tomqueue.configure(priority_map={1: tomqueue.HIGH_PRIORITY, 9: tomqueue.BULK_PRIORITY})
    tomqueue.enqueue(Record("h"), priority=1)
    tomqueue.enqueue(Record("b"), priority=9)
    tomqueue.enqueue(Record("n"), priority=4)
    for level in ("high", "bulk", "normal"):
        assert tq.queue_depth(f"{tq.prefix}.balance.{level}") == 1


def test_enqueue_many_is_one_transaction_in_order(tq):
    ids = tomqueue.enqueue_many([Record(str(n)) for n in range(50)])
    assert ids == sorted(ids) and len(set(ids)) == 50
    labels = [r[0] for r in tq.sql("SELECT handler FROM tomqueue_jobs ORDER BY id")]
    assert [f'"label":"{n}"' in h for n, h in enumerate(labels)] == [True] * 50
    assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 50


def test_unserialisable_state_is_refused_and_nothing_is_written(tq):
    job = Record("x")
    job.label = {1, 2}  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"Record\.label holds a set"):
        tomqueue.enqueue(job)
    assert tq.pending_count() == 0


def test_naive_run_at_is_refused(tq):
    with pytest.raises(ValueError, match="timezone-aware"):
        tomqueue.enqueue(Record("x"), run_at=datetime(2030, 1, 1))


def test_future_job_is_not_put_on_a_work_queue(tq):
    job_id = tomqueue.enqueue(Record("later"), run_at=datetime.now(UTC) + timedelta(hours=1))
    assert tq.job(job_id)["released_at"] is None
    assert (
        sum(tq.queue_depth(f"{tq.prefix}.balance.{lv}") for lv in ("high", "normal", "low", "bulk"))
        == 0
    )
    assert tq.queue_depth(f"{tq.prefix}.deferred") == 1


def test_session_rollback_means_no_row_and_no_message(tq):
    engine = create_engine(tq.database_url)
    with Session(engine) as session:
        tomqueue.enqueue(Record("rolled back"), session=session)
        assert session.execute(text("SELECT count(*) FROM tomqueue_jobs")).scalar() == 1
        assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 0  # not before commit
        session.rollback()
    assert tq.pending_count() == 0
    assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 0
    engine.dispose()


def test_session_commit_publishes_after_commit(tq):
    engine = create_engine(tq.database_url)
    with Session(engine) as session:
        job_id = tomqueue.enqueue(Record("committed"), session=session)
        assert tq.job(job_id) is None  # invisible outside the transaction
        assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 0
        session.commit()
    assert tq.job(job_id) is not None
    assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 1
    engine.dispose()


def test_sessions_do_not_share_pending_notifications(tq):
    engine = create_engine(tq.database_url)
    with Session(engine) as keep, Session(engine) as drop:
        tomqueue.enqueue(Record("keep"), session=keep)
        tomqueue.enqueue(Record("drop"), session=drop)
        drop.rollback()
        keep.commit()
    assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 1
    assert tq.pending_count() == 1
    engine.dispose()


def test_broker_unreachable_still_commits_and_returns_the_id(tq, caplog):
    tomqueue.configure(amqp_url="amqp://guest:s3cret@127.0.0.1:1/%2F")
    job_id = tomqueue.enqueue(Record("offline"))
    assert not tq.flush_announcements()  # the announcer gave it up...
    row = tq.job(job_id)
    assert row is not None and row["failed_at"] is None
    assert row["released_at"] is None  # left for the deferred manager to announce
    assert "not announced" in caplog.text
    assert "s3cret" not in caplog.text


def test_enqueue_after_the_server_closed_its_pooled_connections_just_works(tq):
    """The autocommit insert checks a pooled connection's socket before sending: one the
    server closed (as after a PostgreSQL restart) is replaced, and nothing is sent twice."""
    first = tomqueue.enqueue(Record("before"))
    tq.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    wait_until(
        lambda: (
            tq.scalar(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            == 0
        )
    )
    second = tomqueue.enqueue(Record("after"))  # no OperationalError, no retry by the caller
    assert second > first
    assert tq.scalar("SELECT count(*) FROM tomqueue_jobs WHERE handler LIKE '%after%'") == 1
