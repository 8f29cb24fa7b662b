"""Jobs enqueued inside savepoints: published only on the outermost commit, and a rolled
back savepoint drops only what it wrote."""

import json

import pika
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

import tomqueue
from tests.jobs import Record

pytestmark = pytest.mark.integration


def announced_ids(tq) -> list[int]:
    """Drain the normal queue and return the job ids it held."""
    if tq.queue_depth(f"{tq.prefix}.balance.normal") == 0:  # maybe not even declared
        return []
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    channel = connection.channel()
    ids = []
    while True:
        method, _, body = channel.basic_get(f"{tq.prefix}.balance.normal", auto_ack=True)
        if method is None:
            break
        ids.append(json.loads(body)["job_id"])
    connection.close()
    return sorted(ids)


@pytest.fixture
def session(tq):
    engine = create_engine(tq.database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_releasing_a_savepoint_publishes_nothing_before_the_real_commit(tq, session):
    outer = tomqueue.enqueue(Record("outer"), session=session)
    with session.begin_nested():
        inner = tomqueue.enqueue(Record("inner"), session=session)
    # the savepoint is released: SQLAlchemy fires after_commit here
    assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 0
    session.commit()
    assert announced_ids(tq) == sorted([outer, inner])


def test_rolling_back_a_savepoint_drops_only_its_own_jobs(tq, session):
    outer = tomqueue.enqueue(Record("outer"), session=session)
    savepoint = session.begin_nested()
    tomqueue.enqueue(Record("inner"), session=session)
    savepoint.rollback()
    after = tomqueue.enqueue(Record("after"), session=session)
    session.commit()
    assert announced_ids(tq) == sorted([outer, after])
    assert tq.pending_count() == 2


def test_nested_savepoints_released_into_a_rolled_back_one_are_dropped(tq, session):
    kept = tomqueue.enqueue(Record("kept"), session=session)
    middle = session.begin_nested()
    with session.begin_nested():
        tomqueue.enqueue(Record("deep"), session=session)
    middle.rollback()
    session.commit()
    assert announced_ids(tq) == [kept]


def test_outer_rollback_drops_what_released_savepoints_wrote(tq, session):
    with session.begin_nested():
        tomqueue.enqueue(Record("inner"), session=session)
    session.rollback()
    assert announced_ids(tq) == []
    assert tq.pending_count() == 0


def test_commit_with_a_savepoint_still_open_publishes_everything(tq, session):
    outer = tomqueue.enqueue(Record("outer"), session=session)
    session.begin_nested()
    inner = tomqueue.enqueue(Record("inner"), session=session)
    session.commit()
    assert announced_ids(tq) == sorted([outer, inner])
