"""The gate layers (ConcurrencyLimit, SerialKey) under LockJob, through the fakes, and the
pure parts of gates: their names, lock keys and the class options that make them."""

from __future__ import annotations

from typing import ClassVar

import pytest

import tomqueue
from tests.unit.test_layers_worker import SETTINGS, context_for, lock_job
from tomqueue.database import ADVISORY_NAMESPACE
from tomqueue.fakes import InMemoryJobStore, RecordingAnnouncer
from tomqueue.gates import limit_gate, limited_class, serial_gate
from tomqueue.handler import encode_handler
from tomqueue.job import stored_serial_key
from tomqueue.middleware import Chain
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import NewJob
from tomqueue.wire import decode_notification
from tomqueue.worker.context import WorkContext
from tomqueue.worker.gates import (
    ConcurrencyLimit,
    FreeKeptSlots,
    Gatekeeper,
    HandOff,
    LocalDelivery,
    SerialKey,
)
from tomqueue.worker.outcome import Outcome


class Capped(tomqueue.Job):
    concurrency_limit: ClassVar[int | None] = 1

    def perform(self) -> None:
        pass


class Keyed(tomqueue.Job):
    def __init__(self, key: str | None) -> None:
        self.key = key

    def serial_key(self) -> str | None:
        return self.key

    def perform(self) -> None:
        pass


@pytest.fixture
def store() -> InMemoryJobStore:
    return InMemoryJobStore()


@pytest.fixture
def announcer() -> RecordingAnnouncer:
    return RecordingAnnouncer()


def add(store: InMemoryJobStore, job: tomqueue.Job) -> JobSnapshot:
    new = NewJob(encode_handler(job), 0, None, None, serial_key=stored_serial_key(job))
    [row] = store.insert_committed([new])
    return row


def stack(store: InMemoryJobStore, announcer: RecordingAnnouncer) -> Chain[WorkContext, Outcome]:
    keeper = Gatekeeper(store, announcer, SETTINGS)
    return Chain([lock_job(store), ConcurrencyLimit(keeper), SerialKey(keeper)])


def announced(announcer: RecordingAnnouncer) -> list[int]:
    return [note.job_id for note in announcer.submitted]


def test_a_capped_job_runs_with_a_free_slot_and_leaves_it_after_its_delete(store, announcer):
    first, second = add(store, Capped()), add(store, Capped())
    chain = stack(store, announcer)
    seen: list[Outcome] = []

    def runs_the_second_meanwhile(ctx: WorkContext) -> Outcome:
        # while the first holds the one slot, the second parks, unrun, no attempt counted
        seen.append(chain.invoke(context_for(second, attempt=2), lambda c: Outcome.SUCCEEDED))
        return Outcome.SUCCEEDED

    assert chain.invoke(context_for(first), runs_the_second_meanwhile) is Outcome.SUCCEEDED
    assert seen == [Outcome.PARKED]
    parked = store.get(second.id)
    assert parked is not None and parked.attempts == 0 and parked.locked_by is None
    # the first left its slot after its delete, and woke the parked one
    assert store.get(first.id) is None
    assert announced(announcer) == [second.id]
    assert store.get(second.id).parked_on is None
    assert chain.invoke(context_for(store.get(second.id)), lambda c: Outcome.SUCCEEDED) is (
        Outcome.SUCCEEDED
    )


def test_a_stuck_job_keeps_its_slot(store, announcer):
    job = add(store, Capped())
    chain = stack(store, announcer)
    assert chain.invoke(context_for(job), lambda c: Outcome.STUCK) is Outcome.STUCK
    assert store.take(limit_gate(Capped.class_name(), 1)) is None  # still held


def test_a_serial_job_behind_an_earlier_one_parks_and_its_turn_comes_after_it(store, announcer):
    first, second = add(store, Keyed("k")), add(store, Keyed("k"))
    other = add(store, Keyed("other"))
    chain = stack(store, announcer)
    assert chain.invoke(context_for(second), lambda c: Outcome.SUCCEEDED) is Outcome.PARKED
    assert store.get(second.id).parked_on == "serial:k"
    assert chain.invoke(context_for(other), lambda c: Outcome.SUCCEEDED) is Outcome.SUCCEEDED
    assert announced(announcer) == []
    assert chain.invoke(context_for(first), lambda c: Outcome.SUCCEEDED) is Outcome.SUCCEEDED
    # the next of the key is woken for this thread to run next, unannounced: a sweep
    # announces it if this process dies first
    assert announced(announcer) == []
    assert store.get(second.id).parked_on is None and store.get(second.id).released_at is None
    source = HandOff(EmptySource(), keeper_of(chain))
    delivery = source.pop(0.0)
    assert decode_notification(delivery.body).job_id == second.id
    assert source.pop(0.0) is None  # then the worker's own source
    delivery.nack(requeue=True)  # an error before the lock: announced instead
    assert announced(announcer) == [second.id]


class EmptySource:
    def pop(self, timeout: float) -> None:
        return None


def keeper_of(chain: Chain[WorkContext, Outcome]) -> Gatekeeper:
    return next(layer.keeper for layer in chain if isinstance(layer, SerialKey))


def test_a_failed_attempt_keeps_the_key_with_the_failing_job(store, announcer):
    first, second = add(store, Keyed("k")), add(store, Keyed("k"))
    chain = stack(store, announcer)
    store.park(serial_gate("k"), *_locked(store, second))
    failing = chain.invoke(context_for(first), lambda c: Outcome.ATTEMPT_FAILED)
    assert failing is Outcome.RETRY_SCHEDULED
    assert announced(announcer) == []  # the first is still the key's head
    assert store.get(second.id).parked_on == "serial:k"


def _locked(store: InMemoryJobStore, row: JobSnapshot) -> tuple[int, str]:
    store.lock_for_run(row.id, row.digest, "w9 run:1", 9)
    return row.id, "w9 run:1"


def test_jobs_without_a_limit_or_key_pass_untouched(store, announcer):
    row = add(store, Keyed(None))
    chain = stack(store, announcer)
    assert chain.invoke(context_for(row), lambda c: Outcome.SUCCEEDED) is Outcome.SUCCEEDED
    assert store.get(row.id) is None and announced(announcer) == []


# -- the pure parts -------------------------------------------------------------------------


def test_gate_names_and_keys_are_stable_and_never_the_leases_namespace():
    gate = limit_gate("app.jobs.Charge", 3)
    assert gate.name == "limit:app.jobs.Charge" and gate.slots == (1, 2, 3)
    assert limit_gate("app.jobs.Charge", 3) == gate
    assert limited_class(gate.name) == "app.jobs.Charge"
    serial = serial_gate("account:42")
    assert serial.name == "serial:account:42" and limited_class(serial.name) is None
    assert serial.size == 1 and serial_gate("account:42") == serial
    assert serial_gate("account:43").slots != serial.slots
    for one in (gate, serial, serial_gate("x"), limit_gate("y", 1)):
        assert 0 <= one.space <= 0x7FFFFFFF and one.space != ADVISORY_NAMESPACE
        assert all(0 <= slot <= 0x7FFFFFFF for slot in one.slots)


@pytest.mark.parametrize(
    ("limit", "error"),
    [(0, ValueError), (-1, ValueError), (10_001, ValueError), (True, TypeError), ("2", TypeError)],
)
def test_a_bad_concurrency_limit_is_refused_when_the_class_is_defined(limit, error):
    with pytest.raises(error, match="concurrency_limit"):
        type("BadLimit", (tomqueue.Job,), {"concurrency_limit": limit})


@pytest.mark.parametrize(
    ("key", "error"), [(7, TypeError), ("", ValueError), ("x" * 501, ValueError)]
)
def test_a_bad_serial_key_is_refused_before_anything_is_written(key, error):
    with pytest.raises(error, match="serial_key"):
        stored_serial_key(Keyed(key))


def local_context(row: JobSnapshot, announcer: RecordingAnnouncer) -> WorkContext:
    """A job handed to this thread by the job before it (HandOff), not by the broker."""
    ctx = context_for(row)
    ctx.delivery = LocalDelivery(ctx.notification, announcer)
    return ctx


def passing_stack(store: InMemoryJobStore, keeper: Gatekeeper) -> Chain[WorkContext, Outcome]:
    return Chain(
        [FreeKeptSlots(keeper), lock_job(store), ConcurrencyLimit(keeper), SerialKey(keeper)]
    )


def test_a_run_of_one_key_passes_the_key_from_job_to_job_without_letting_go(store, announcer):
    rows = [add(store, Keyed("run")) for _ in range(3)]
    # written behind the first of their key: parked, for it to wake (nothing to announce)
    assert [store.get(row.id).parked_on for row in rows] == [None, "serial:run", "serial:run"]
    gate = serial_gate("run")
    keeper = Gatekeeper(store, announcer, SETTINGS)
    chain = passing_stack(store, keeper)
    turns: list[int] = []
    take_turn = store.take_turn
    store.take_turn = lambda g, job_id: (turns.append(job_id), take_turn(g, job_id))[1]

    assert chain.invoke(context_for(rows[0]), lambda c: Outcome.SUCCEEDED) is Outcome.SUCCEEDED
    second = keeper.take_handed()
    assert second is not None and second.id == rows[1].id
    assert chain.invoke(local_context(second, announcer), lambda c: Outcome.SUCCEEDED) is (
        Outcome.SUCCEEDED
    )
    # the second was handed its turn: at its end the key goes straight on to the third,
    # still held by this thread (nobody else can take it in between)
    assert keeper.passed() == (gate, gate.slots[0], rows[2].id)
    assert store.take(gate) is None
    third = keeper.take_handed()
    assert third is not None and third.id == rows[2].id
    assert chain.invoke(local_context(third, announcer), lambda c: Outcome.SUCCEEDED) is (
        Outcome.SUCCEEDED
    )
    assert turns == [rows[0].id, rows[1].id]  # the third took no turn: it was passed one
    # the last of the run lets the key go
    assert keeper.passed() is None and keeper.take_handed() is None
    assert store.take(gate) == gate.slots[0]
    assert store.jobs() == [] and announced(announcer) == []


def test_a_key_kept_for_a_job_that_never_claims_it_is_let_go_and_the_next_woken(store, announcer):
    rows = [add(store, Keyed("gone")) for _ in range(3)]
    keeper = Gatekeeper(store, announcer, SETTINGS)
    chain = passing_stack(store, keeper)
    assert chain.invoke(context_for(rows[0]), lambda c: Outcome.SUCCEEDED) is Outcome.SUCCEEDED
    second = keeper.take_handed()
    assert second is not None
    chain.invoke(local_context(second, announcer), lambda c: Outcome.SUCCEEDED)
    third = keeper.take_handed()
    assert third is not None and keeper.passed() is not None
    del store._rows[third.id]  # a person deleted it before its turn came
    assert chain.invoke(local_context(third, announcer), lambda c: Outcome.SUCCEEDED) is (
        Outcome.DROPPED
    )
    # the kept key was let go when the turn ended unclaimed
    gate = serial_gate("gone")
    assert keeper.passed() is None
    assert store.take(gate) == gate.slots[0]
