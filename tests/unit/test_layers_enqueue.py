"""The enqueue stack's layers (Validate, Persist, PublishAfterCommit) through the fakes.

No servers: the store is ``tomqueue.fakes.InMemoryJobStore`` (held to the real store by
tests/contract/), the broker a RecordingPublisher and a RecordingAnnouncer. The session
path uses a SQLAlchemy Session on an in-memory SQLite engine, only for its transaction
events: the rows themselves go to the fake.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

import tomqueue
from tomqueue.enqueue.context import EnqueueContext
from tomqueue.enqueue.layers import Persist, PublishAfterCommit, Validate, leave_for_sweep
from tomqueue.enqueue.stack import default_enqueue_stack
from tomqueue.errors import BrokerUnavailableError
from tomqueue.fakes import InMemoryJobStore, RecordingAnnouncer, RecordingPublisher
from tomqueue.notifications import notification_for
from tomqueue.settings import Settings
from tomqueue.store.values import NewJob
from tomqueue.wire import Notification


class Greet(tomqueue.Job):
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self) -> None:
        pass


class Urgent(tomqueue.Job):
    priority = -5
    queue_name = "urgent"

    def perform(self) -> None:
        pass


class SpyStore(InMemoryJobStore):
    """The fake store, noting which insert Persist used and with what connection."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, object]] = []

    def insert(self, conn, new_jobs):
        self.calls.append(("insert", conn))
        return super().insert(conn, new_jobs)

    def insert_committed(self, new_jobs):
        self.calls.append(("insert_committed", None))
        return super().insert_committed(new_jobs)


class Runtime:
    """What the enqueue stack uses from its App (``tomqueue.ports.EnqueueRuntime``),
    made of fakes."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.enqueue_store = SpyStore()
        self.store = SimpleNamespace(enqueue=self.enqueue_store)
        self.publisher = RecordingPublisher()
        self.announcer = RecordingAnnouncer()
        self.bound = 0

    def ensure_prefix_bound(self) -> None:
        self.bound += 1

    def leave_for_sweep(self, notes: Sequence[Notification]) -> None:
        leave_for_sweep(self.enqueue_store, notes)  # what App.leave_for_sweep does


@pytest.fixture
def runtime() -> Runtime:
    return Runtime()


def context(runtime: Runtime, jobs: list[object], **options: object) -> EnqueueContext:
    return EnqueueContext(jobs=jobs, app=runtime, **options)  # type: ignore[arg-type]


def enqueue(runtime: Runtime, jobs: list[object], **options: object) -> list[int]:
    return default_enqueue_stack().invoke(context(runtime, jobs, **options), lambda c: c.ids)


def notes(runtime: Runtime, rows) -> list[Notification]:
    return [notification_for(row, runtime.settings.priority_map) for row in rows]


def unreachable(ctx: EnqueueContext) -> list[int]:
    raise AssertionError("the next layer must not be called")


# -- Validate ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Greet", {"class": "Greet"}, Greet])
def test_validate_refuses_what_is_not_a_job_instance(runtime, bad):
    with pytest.raises(TypeError, match="expected a tomqueue.Job instance"):
        enqueue(runtime, [Greet("ok"), bad])
    assert runtime.enqueue_store.jobs() == []
    assert runtime.announcer.submitted == []


def test_validate_refuses_a_naive_run_at(runtime):
    with pytest.raises(ValueError, match="timezone-aware"):
        enqueue(runtime, [Greet("ok")], run_at=datetime(2030, 1, 1))
    assert runtime.enqueue_store.jobs() == []


@pytest.mark.parametrize(
    ("value", "culprit"),
    [({1, 2}, "Greet.name holds a set"), (float("nan"), "JSON cannot hold"), (object(), "object")],
)
def test_validate_refuses_state_that_is_not_json(runtime, value, culprit):
    with pytest.raises(TypeError, match=culprit):
        enqueue(runtime, [Greet("ok"), Greet(value)])
    assert runtime.enqueue_store.jobs() == []
    assert runtime.bound == 0  # refused before anything touched the database


def test_validate_takes_priority_and_queue_from_the_class_unless_given():
    ctx = context(Runtime(), [Greet("a"), Urgent()])
    Validate()(ctx, lambda c: [])
    assert [(n.priority, n.queue) for n in ctx.new_jobs] == [(0, None), (-5, "urgent")]
    ctx = context(Runtime(), [Greet("a"), Urgent()], priority=7, queue="q")
    Validate()(ctx, lambda c: [])
    assert [(n.priority, n.queue) for n in ctx.new_jobs] == [(7, "q"), (7, "q")]


# -- Persist -------------------------------------------------------------------------------


def test_persist_writes_the_rows_in_a_transaction_of_its_own(runtime):
    ids = enqueue(runtime, [Greet("a"), Greet("b"), Urgent()])
    rows = runtime.enqueue_store.jobs()
    assert ids == [row.id for row in rows]
    assert [row.class_name for row in rows] == [
        Greet.class_name(),
        Greet.class_name(),
        Urgent.class_name(),
    ]
    assert '"name":"b"' in rows[1].handler
    assert runtime.enqueue_store.calls == [("insert_committed", None)]
    assert runtime.bound == 1  # the prefix check comes before the write


def test_persist_with_nothing_to_write_returns_no_ids_and_stops(runtime):
    ctx = context(runtime, [])
    assert Persist()(ctx, unreachable) == []
    assert runtime.bound == 0 and runtime.enqueue_store.calls == []


def test_persist_writes_in_the_callers_session(runtime):
    with Session(create_engine("sqlite://")) as session:
        ids = enqueue(runtime, [Greet("a"), Greet("b")], session=session)
        [(method, conn)] = runtime.enqueue_store.calls
        assert method == "insert" and conn is session.connection()
        assert len(ids) == 2
        session.rollback()


# -- PublishAfterCommit ---------------------------------------------------------------------


def due_and_future(runtime: Runtime):
    later = datetime.now(UTC) + timedelta(hours=1)
    return runtime.enqueue_store.insert_committed(
        [NewJob("{}", 0, None, None), NewJob("{}", -1, later, None), NewJob("{}", 20, None, None)]
    )


def test_publish_after_commit_hands_due_and_future_rows_to_the_announcer(runtime):
    due, future, bulk = due_and_future(runtime)
    ctx = context(runtime, [])
    ctx.rows = [due, future, bulk]
    assert PublishAfterCommit()(ctx, lambda c: c.ids) == [due.id, future.id, bulk.id]
    assert runtime.announcer.submitted == notes(runtime, [due, bulk])
    assert runtime.announcer.submitted_deferred == notes(runtime, [future])
    assert [n.level for n in runtime.announcer.submitted] == [
        tomqueue.NORMAL_PRIORITY,
        tomqueue.BULK_PRIORITY,
    ]
    assert runtime.publisher.published == [] and runtime.publisher.published_deferred == []


def test_publish_after_commit_waits_for_the_broker_when_asked(runtime):
    due, future, bulk = due_and_future(runtime)
    ctx = context(runtime, [], wait_for_broker=True)
    ctx.rows = [due, future, bulk]
    PublishAfterCommit()(ctx, lambda c: c.ids)
    assert runtime.publisher.published == notes(runtime, [due, bulk])
    assert runtime.publisher.published_deferred == notes(runtime, [future])
    assert runtime.announcer.submitted == [] and runtime.announcer.submitted_deferred == []


def test_a_broker_failure_leaves_committed_rows_for_the_sweep(runtime, caplog):
    runtime.publisher.publish_error = BrokerUnavailableError("RabbitMQ is down")
    ids = enqueue(runtime, [Greet("a"), Greet("b")], wait_for_broker=True)
    rows = runtime.enqueue_store.jobs()
    assert [row.id for row in rows] == ids  # enqueue still succeeds: the rows are the truth
    assert all(row.released_at is None for row in rows)  # the sweep announces them later
    assert runtime.publisher.published == []
    assert "committed but were not announced" in caplog.text


def test_failing_to_wake_the_deferred_manager_only_logs(runtime, caplog):
    runtime.publisher.deferred_error = BrokerUnavailableError("RabbitMQ is down")
    later = datetime.now(UTC) + timedelta(hours=1)
    [job_id] = enqueue(runtime, [Greet("later")], run_at=later, wait_for_broker=True)
    assert runtime.enqueue_store.get(job_id).released_at is None  # as it was: not due yet
    assert "could not wake the deferred manager" in caplog.text


def test_with_a_session_the_announcement_waits_for_the_commit(runtime):
    with Session(create_engine("sqlite://")) as session:
        ids = enqueue(runtime, [Greet("a"), Greet("b")], session=session)
        assert runtime.announcer.submitted == []
        session.commit()
    assert [n.job_id for n in runtime.announcer.submitted] == ids


def test_with_a_session_a_rollback_announces_nothing(runtime):
    with Session(create_engine("sqlite://")) as session:
        enqueue(runtime, [Greet("a")], session=session)
        session.rollback()
    assert runtime.announcer.submitted == [] and runtime.announcer.submitted_deferred == []


class Caller:
    """A CallerTransaction (tomqueue.enqueue.caller) whose commit the test decides; the
    fake store ignores the connection, so ``run`` is never reached here."""

    def __init__(self) -> None:
        self.pending: list[object] = []

    def run(self, sql, params):
        raise AssertionError("the fake store writes the rows itself")

    def on_commit(self, callback) -> None:
        self.pending.append(callback)

    def commit(self) -> None:
        for callback in self.pending:
            callback()
        self.pending.clear()


def test_with_a_caller_transaction_the_rows_go_to_it_and_the_announcement_waits(runtime):
    caller = Caller()
    ids = enqueue(runtime, [Greet("a"), Greet("b")], caller=caller)
    [(method, conn)] = runtime.enqueue_store.calls
    assert method == "insert" and conn is caller
    assert runtime.announcer.submitted == [] and len(caller.pending) == 1
    caller.commit()
    assert [n.job_id for n in runtime.announcer.submitted] == ids


def test_with_a_caller_transaction_a_rollback_announces_nothing(runtime):
    caller = Caller()
    enqueue(runtime, [Greet("a")], caller=caller)
    caller.pending.clear()  # what a rollback does to on_commit callbacks
    assert runtime.announcer.submitted == [] and runtime.announcer.submitted_deferred == []


def test_a_session_and_a_caller_transaction_together_are_refused(runtime):
    with (
        Session(create_engine("sqlite://")) as session,
        pytest.raises(ValueError, match="not both"),
    ):
        enqueue(runtime, [Greet("a")], session=session, caller=Caller())
    assert runtime.enqueue_store.calls == []


def test_leave_for_sweep_survives_a_store_that_fails_too(caplog):
    class Broken(InMemoryJobStore):
        def unrelease(self, ids):
            raise OSError("database down as well")

    note = Notification(1, "ab", tomqueue.NORMAL_PRIORITY, datetime.now(UTC))
    with caplog.at_level(logging.WARNING):
        leave_for_sweep(Broken(), [note])
        leave_for_sweep(Broken(), [])
    assert "could not mark jobs [1] unreleased" in caplog.text
