"""The worker stack's layers (ErrorHandling, Pop, LockJob, Timeout, Invoke) through the fakes.

No servers: rows live in ``tomqueue.fakes.InMemoryJobStore`` (held to the real store by
tests/contract/), the deferred manager's wake-ups land in a RecordingPublisher, and
messages come from the small Delivery, DeliverySource and LeaseGate fakes below.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta

import pytest

import tomqueue
from tomqueue.app import App
from tomqueue.errors import BrokerUnavailableError
from tomqueue.fakes import InMemoryJobStore, RecordingAnnouncer, RecordingPublisher
from tomqueue.handler import encode_handler
from tomqueue.middleware import Chain
from tomqueue.notifications import notification_for
from tomqueue.settings import Settings
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import NewJob
from tomqueue.wire import encode_notification
from tomqueue.worker.context import WorkContext
from tomqueue.worker.layers import (
    ErrorHandling,
    Invoke,
    LeaseNotHeldError,
    LockJob,
    Pop,
    Timeout,
    perform,
)
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.stack import StackParts

SETTINGS = Settings()
LEASE_KEY = 7
EVENTS: defaultdict[str, list[str]] = defaultdict(list)


class Recorded(tomqueue.Job):
    """Notes each hook in EVENTS[label]; fails on purpose if asked; retries a minute later."""

    max_attempts = 3

    def __init__(self, label: str, fail: bool = False) -> None:
        self.label = label
        self.fail = fail

    def before(self) -> None:
        EVENTS[self.label].append("before")

    def perform(self) -> None:
        EVENTS[self.label].append("perform")
        if self.fail:
            raise RuntimeError(f"{self.label} failed on purpose")

    def success(self) -> None:
        EVENTS[self.label].append("success")

    def error(self, exc: BaseException) -> None:
        EVENTS[self.label].append("error")

    def after(self) -> None:
        EVENTS[self.label].append("after")

    def failure(self) -> None:
        EVENTS[self.label].append("failure")

    def reschedule_at(self, now: datetime, attempts: int) -> datetime:
        return now + timedelta(minutes=attempts)


class OneShot(Recorded):
    max_attempts = 1


class Brief(tomqueue.Job):
    max_run_time = 0.2

    def perform(self) -> None:
        pass


# -- the message fakes ----------------------------------------------------------------------


class FakeDelivery:
    """A message that notes how it was settled in a shared list of events."""

    def __init__(self, body: bytes, events: list[str] | None = None) -> None:
        self.body = body
        self.redelivered = False
        self.events = events if events is not None else []

    def ack(self) -> None:
        self.events.append("ack")

    def nack(self, requeue: bool) -> None:
        self.events.append(f"nack requeue={requeue}")

    def mark_locked(self) -> None:
        self.events.append("mark_locked")


class FakeSource:
    """Messages handed out in order, then None (nothing within the wait)."""

    def __init__(self, *deliveries: FakeDelivery) -> None:
        self.deliveries = deque(deliveries)

    def pop(self, timeout: float) -> FakeDelivery | None:
        return self.deliveries.popleft() if self.deliveries else None


class FakeLease:
    def __init__(self, held: bool = True) -> None:
        self.held = held

    def wait_held(self, timeout: float) -> bool:
        return self.held


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clear_events():
    EVENTS.clear()


@pytest.fixture
def store() -> InMemoryJobStore:
    return InMemoryJobStore()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


def add(store: InMemoryJobStore, job: tomqueue.Job, run_at: datetime | None = None):
    [row] = store.insert_committed([NewJob(encode_handler(job), 0, run_at, None)])
    return row


def add_handler(store: InMemoryJobStore, handler: str) -> JobSnapshot:
    [row] = store.insert_committed([NewJob(handler, 0, None, None)])
    return row


def message(row: JobSnapshot, events: list[str] | None = None) -> FakeDelivery:
    return FakeDelivery(encode_notification(notification_for(row, SETTINGS.priority_map)), events)


def fresh_context(attempt: int = 1) -> WorkContext:
    return WorkContext(worker_name="w1", lease_key=LEASE_KEY, locked_by=f"w1 run:{attempt}")


def context_for(row: JobSnapshot, attempt: int = 1) -> WorkContext:
    ctx = fresh_context(attempt)
    ctx.notification = notification_for(row, SETTINGS.priority_map)
    return ctx


def lock_job(store: InMemoryJobStore, lease: FakeLease | None = None) -> LockJob:
    return LockJob(store, SETTINGS, should_stop=lambda: False, lease=lease)


def unreachable(ctx: WorkContext) -> Outcome:
    raise AssertionError("the next layer must not be called")


def returning(outcome: Outcome, events: list[str] | None = None):
    def inner(ctx: WorkContext) -> Outcome:
        if events is not None:
            events.append("inner")
        return outcome

    return inner


# -- ErrorHandling --------------------------------------------------------------------------


def test_error_handling_turns_an_exception_into_errored():
    def broken(ctx: WorkContext) -> Outcome:
        raise ValueError("a bug in a layer")

    assert ErrorHandling()(fresh_context(), broken) is Outcome.ERRORED


def test_error_handling_passes_outcomes_through():
    assert ErrorHandling()(fresh_context(), returning(Outcome.DROPPED)) is Outcome.DROPPED


# -- Pop ------------------------------------------------------------------------------------


def test_pop_is_idle_without_a_message(publisher):
    assert Pop(FakeSource(), publisher, SETTINGS)(fresh_context(), unreachable) is Outcome.IDLE


@pytest.mark.parametrize("body", [b"not json", b'{"v": 2}', b"\xff" * 10, b"[" * 10_000])
def test_pop_acks_and_drops_a_malformed_message(publisher, body):
    delivery = FakeDelivery(body)
    pop = Pop(FakeSource(delivery), publisher, SETTINGS)
    assert pop(fresh_context(), unreachable) is Outcome.MALFORMED
    assert delivery.events == ["ack"]


@pytest.mark.parametrize(
    "outcome",
    [Outcome.SUCCEEDED, Outcome.FAILED, Outcome.REFUSED, Outcome.DROPPED, Outcome.DEFERRED],
)
def test_pop_acks_after_the_inner_layers_are_done(store, publisher, outcome):
    events: list[str] = []
    delivery = message(add(store, Recorded("a")), events)
    ctx = fresh_context()
    pop = Pop(FakeSource(delivery), publisher, SETTINGS)
    assert pop(ctx, returning(outcome, events)) is outcome
    assert events == ["inner", "ack"]  # the row is written first: ack last
    assert ctx.notification.job_id == store.jobs()[0].id


def test_pop_leaves_a_stuck_jobs_message_unacked(store, publisher):
    events: list[str] = []
    delivery = message(add(store, Recorded("a")), events)
    pop = Pop(FakeSource(delivery), publisher, SETTINGS)
    assert pop(fresh_context(), returning(Outcome.STUCK, events)) is Outcome.STUCK
    assert events == ["inner"]  # RabbitMQ redelivers it once this process is gone


def test_pop_requeues_a_failing_message_then_drops_it_after_max_tries(store, publisher):
    row = add(store, Recorded("a"))
    deliveries = [message(row) for _ in range(4)]
    pop = Pop(FakeSource(*deliveries), publisher, SETTINGS, max_tries=3)

    def broken(ctx: WorkContext) -> Outcome:
        raise RuntimeError("fails before the lock")

    for _ in deliveries:
        with pytest.raises(RuntimeError):
            pop(fresh_context(), broken)
    settled = [d.events for d in deliveries]
    assert settled == [["nack requeue=True"], ["nack requeue=True"], ["ack"], ["nack requeue=True"]]


def test_pop_requeues_without_counting_a_try_when_the_lease_is_lost(store, publisher):
    row = add(store, Recorded("a"))
    deliveries = [message(row) for _ in range(5)]
    pop = Pop(FakeSource(*deliveries), publisher, SETTINGS, max_tries=2)

    def no_lease(ctx: WorkContext) -> Outcome:
        raise LeaseNotHeldError("lost")

    for _ in deliveries:
        with pytest.raises(LeaseNotHeldError):
            pop(fresh_context(), no_lease)
    assert all(d.events == ["nack requeue=True"] for d in deliveries)


def test_pop_wakes_the_deferred_manager_for_a_row_that_became_its_business(store, publisher):
    row = add(store, Recorded("a"))
    events: list[str] = []

    def retried(ctx: WorkContext) -> Outcome:
        ctx.wake_deferred = row
        return Outcome.RETRY_SCHEDULED

    pop = Pop(FakeSource(message(row, events)), publisher, SETTINGS)
    assert pop(fresh_context(), retried) is Outcome.RETRY_SCHEDULED
    assert publisher.published_deferred == [notification_for(row, SETTINGS.priority_map)]
    assert events == ["ack"]


def test_pop_acks_even_if_the_deferred_manager_cannot_be_woken(store, publisher, caplog):
    publisher.deferred_error = BrokerUnavailableError("down")
    row = add(store, Recorded("a"))
    events: list[str] = []

    def retried(ctx: WorkContext) -> Outcome:
        ctx.wake_deferred = row
        return Outcome.RETRY_SCHEDULED

    pop = Pop(FakeSource(message(row, events)), publisher, SETTINGS)
    assert pop(fresh_context(), retried) is Outcome.RETRY_SCHEDULED
    assert events == ["ack"]
    assert "could not wake the deferred manager" in caplog.text


# -- LockJob --------------------------------------------------------------------------------


def test_lock_job_runs_a_due_job_and_deletes_its_row(store):
    row = add(store, Recorded("a"))
    ctx = context_for(row)
    ctx.delivery = FakeDelivery(b"")
    seen: list[tomqueue.Job] = []

    def run(ctx: WorkContext) -> Outcome:
        seen.append(ctx.job)
        assert store.get(row.id).locked_by == "w1 run:1"  # locked while it runs
        return Outcome.SUCCEEDED

    assert lock_job(store)(ctx, run) is Outcome.SUCCEEDED
    assert isinstance(seen[0], Recorded) and seen[0].label == "a"
    assert store.get(row.id) is None
    assert ctx.delivery.events == ["mark_locked"]  # long jobs may have it acked early


def test_lock_job_drops_a_job_another_live_attempt_holds(store):
    row = add(store, Recorded("a"))
    store.lock_for_run(row.id, row.digest, "w2 run:9", 99)
    store.hold_lease(99)
    assert lock_job(store)(context_for(row), unreachable) is Outcome.DROPPED
    assert store.get(row.id).locked_by == "w2 run:9"


@pytest.mark.parametrize(
    ("serves", "queue", "runs"),
    [("billing", None, False), ("default", "billing", False), ("billing", "billing", True)],
)
def test_lock_job_hands_back_a_job_of_a_queue_it_does_not_serve(store, serves, queue, runs):
    [row] = store.insert_committed([NewJob(encode_handler(Recorded("q")), 0, None, queue)])
    layer = LockJob(store, SETTINGS.replace(queues=serves), should_stop=lambda: False)
    ran = returning(Outcome.SUCCEEDED)
    outcome = layer(context_for(row), ran if runs else unreachable)
    if runs:
        assert outcome is Outcome.SUCCEEDED and store.get(row.id) is None
        return
    assert outcome is Outcome.DROPPED  # its message is acked: a sweep announces it again
    after = store.get(row.id)
    assert after is not None and after.locked_by is None and after.released_at is None
    assert after.attempts == 0


def test_lock_job_drops_stale_and_missing_notifications(store):
    row = add(store, Recorded("a"))
    stale = context_for(row)
    store.edit(row.id, attempts=1)  # the row changed after the notification was sent
    assert lock_job(store)(stale, unreachable) is Outcome.DROPPED
    missing = context_for(row)
    store.lock_for_run(row.id, store.get(row.id).digest, "w1 run:0", LEASE_KEY)
    store.delete_succeeded(row.id, "w1 run:0")
    assert lock_job(store)(missing, unreachable) is Outcome.DROPPED


def test_lock_job_defers_a_future_job_and_pop_wakes_the_deferred_manager(store, publisher):
    row = add(store, Recorded("later"), run_at=datetime.now(UTC) + timedelta(hours=1))
    events: list[str] = []
    stack = Chain([Pop(FakeSource(message(row, events)), publisher, SETTINGS), lock_job(store)])
    assert stack.invoke(fresh_context(), unreachable) is Outcome.DEFERRED
    assert publisher.published_deferred == [notification_for(row, SETTINGS.priority_map)]
    assert events == ["ack"]
    assert store.get(row.id).locked_by is None and EVENTS["later"] == []


def test_lock_job_refuses_an_unknown_class_and_fails_the_row_for_good(store):
    row = add_handler(store, '{"v":1,"class":"myapp.jobs.Gone","state":{}}')
    assert lock_job(store)(context_for(row), unreachable) is Outcome.REFUSED
    failed = store.get(row.id)
    assert failed.failed_at is not None and failed.locked_by is None
    assert "'myapp.jobs.Gone' is not registered" in failed.last_error
    assert f"tomqueue retry {row.id}" in failed.last_error


def test_lock_job_refuses_poison_and_tells_the_job(store):
    row = store.edit(add(store, Recorded("poison")).id, crashes=SETTINGS.max_crashes)
    assert lock_job(store)(context_for(row), unreachable) is Outcome.REFUSED
    assert "poison" in store.get(row.id).last_error
    assert EVENTS["poison"] == ["failure"]


def test_lock_job_records_a_failure_with_the_jobs_retry_time(store):
    clock = datetime(2030, 1, 1, tzinfo=UTC)
    store.now = lambda: clock
    row = add(store, Recorded("flaky", fail=True))
    ctx = context_for(row)
    stack = Chain([lock_job(store), Invoke()])
    assert stack.invoke(ctx, perform) is Outcome.RETRY_SCHEDULED
    after = store.get(row.id)
    assert after.attempts == 1 and after.failed_at is None and after.locked_by is None
    # the database's clock at the lock, plus the time the attempt took, plus a minute
    assert clock + timedelta(minutes=1) <= after.run_at < clock + timedelta(minutes=1, seconds=5)
    assert after.last_error.startswith("RuntimeError: flaky failed on purpose")
    assert ctx.wake_deferred == after  # Pop tells the deferred manager
    assert EVENTS["flaky"] == ["before", "perform", "error", "after"]


def test_lock_job_fails_for_good_after_the_last_attempt_and_calls_failure(store):
    row = add(store, OneShot("once", fail=True))
    ctx = context_for(row)
    assert Chain([lock_job(store), Invoke()]).invoke(ctx, perform) is Outcome.FAILED
    after = store.get(row.id)
    assert after.failed_at is not None and after.attempts == 1
    assert after.last_error.startswith("RuntimeError: once failed on purpose")
    assert EVENTS["once"] == ["before", "perform", "error", "after", "failure"]
    assert ctx.wake_deferred is None


def test_lock_job_takes_no_job_while_the_lease_is_not_held(store):
    row = add(store, Recorded("a"))
    with pytest.raises(LeaseNotHeldError):
        lock_job(store, FakeLease(held=False))(context_for(row), unreachable)
    assert store.get(row.id).locked_by is None


def test_lock_job_unlocks_the_row_after_an_internal_error(store):
    row = add(store, Recorded("a"))

    def broken(ctx: WorkContext) -> Outcome:
        raise RuntimeError("a bug inside tomqueue")

    assert lock_job(store, FakeLease())(context_for(row), broken) is Outcome.ERRORED
    after = store.get(row.id)
    assert after.locked_by is None and after.failed_at is None and after.attempts == 1
    assert after.run_at == row.run_at  # due again at once: not the job's fault
    assert after.last_error.startswith("internal error in the worker: RuntimeError")


# -- Timeout --------------------------------------------------------------------------------


def timed_context(row: JobSnapshot) -> WorkContext:
    ctx = context_for(row)
    ctx.job = Brief()
    return ctx


def test_timeout_passes_a_quick_jobs_outcome_through(store):
    ctx = timed_context(add(store, Brief()))
    assert Timeout(grace=1.0)(ctx, returning(Outcome.SUCCEEDED)) is Outcome.SUCCEEDED


def test_timeout_fails_an_attempt_that_overran_with_a_job_timeout(store):
    row = add(store, Brief())
    ctx = timed_context(row)

    def endless(ctx: WorkContext) -> Outcome:
        while True:
            time.sleep(0.01)  # Python between sleeps: JobTimeout lands here

    started = time.monotonic()
    assert Timeout(grace=5.0)(ctx, endless) is Outcome.ATTEMPT_FAILED
    assert time.monotonic() - started < 3
    assert ctx.error_text.startswith(f"JobTimeout: job {row.id} exceeded max_run_time of 0.2s")


def test_timeout_reports_a_job_blocked_in_c_as_stuck(store):
    ctx = timed_context(add(store, Brief()))
    blocked = threading.Event()
    stuck: list[WorkContext] = []

    def blocks(ctx: WorkContext) -> Outcome:
        blocked.wait()  # a C call: JobTimeout cannot land until it returns
        return Outcome.SUCCEEDED

    try:
        timeout = Timeout(grace=0.2, on_stuck=stuck.append)
        assert timeout(ctx, blocks) is Outcome.STUCK
        assert stuck == [ctx]
    finally:
        blocked.set()


# -- Invoke ---------------------------------------------------------------------------------


def test_invoke_runs_the_hooks_in_order_on_success():
    ctx = fresh_context()
    ctx.job = Recorded("ok")
    assert Invoke()(ctx, perform) is Outcome.SUCCEEDED
    assert EVENTS["ok"] == ["before", "perform", "success", "after"]
    assert ctx.error_text is None


def test_invoke_records_the_error_text_on_failure():
    ctx = fresh_context()
    ctx.job = Recorded("bad", fail=True)
    assert Invoke()(ctx, perform) is Outcome.ATTEMPT_FAILED
    assert EVENTS["bad"] == ["before", "perform", "error", "after"]
    assert ctx.error_text.startswith("RuntimeError: bad failed on purpose")
    assert "Traceback" in ctx.error_text


def test_invoke_keeps_even_system_exit_inside_the_attempt():
    ctx = fresh_context()
    ctx.job = Recorded("exit")

    def exits(ctx: WorkContext) -> Outcome:
        raise SystemExit(3)

    assert Invoke()(ctx, exits) is Outcome.ATTEMPT_FAILED
    assert ctx.error_text.startswith("SystemExit: 3")


# -- the default stack, as an App builds it -------------------------------------------------


def test_the_default_stack_runs_a_job_end_to_end_over_the_fakes(store, publisher):
    app = App(SETTINGS)
    # the App's parts are built on first use; give it fakes before anything asks
    stores = type("Stores", (), {"worker": store, "gates": store})()
    app.__dict__.update(store=stores, publisher=publisher, announcer=RecordingAnnouncer())
    ok, bad = add(store, Recorded("ok")), add(store, Recorded("bad", fail=True))
    events: list[str] = []
    source = FakeSource(message(ok, events), message(bad, events))
    stack = app.build_worker_stack(
        StackParts(runtime=app, source=source, should_stop=lambda: False, lease=FakeLease())
    )
    assert stack.names() == [
        "ErrorHandling",
        "ObserveOutcome",
        "FreeKeptSlots",
        "Pop",
        "LockJob",
        "ConcurrencyLimit",
        "SerialKey",
        "Timeout",
        "TracePerform",
        "Invoke",
    ]
    outcomes = [stack.invoke(fresh_context(n), perform) for n in (1, 2, 3)]
    assert outcomes == [Outcome.SUCCEEDED, Outcome.RETRY_SCHEDULED, Outcome.IDLE]
    assert events == ["mark_locked", "ack", "mark_locked", "ack"]
    assert store.get(ok.id) is None and store.get(bad.id).attempts == 1
    assert [n.job_id for n in publisher.published_deferred] == [bad.id]
