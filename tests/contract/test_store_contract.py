"""One contract for the job store, run against the fake and against PostgreSQL.

Every test takes ``backend``, parametrized over ``"fake"`` (``tomqueue.fakes
.InMemoryJobStore``, no servers) and ``"real"`` (``App.store.worker`` and ``.enqueue``
on a fresh database cloned per test by the ``tq`` fixture). What holds for one must hold
for the other: a layer unit-tested through the fake then behaves the same in production.

The real half is marked ``integration`` (it skips politely without servers, and fails in
CI); ``pytest tests/contract -m "not integration"`` runs the fake half alone anywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import libpq, wait_until
from tomqueue.admission import Admission
from tomqueue.database import ADVISORY_NAMESPACE
from tomqueue.fakes import InMemoryJobStore
from tomqueue.gates import limit_gate, serial_gate
from tomqueue.job_status import JobStatus
from tomqueue.ports import EnqueueStorePort, GateStorePort, WorkerStorePort
from tomqueue.progress import StatusReport
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import Ended, NewJob

HOLDER, OTHER = "host pid:1 key:11 run:1", "host pid:2 key:22 run:1"
HOLDER_KEY, OTHER_KEY = 11, 22


@dataclass
class Backend:
    """A store under test, and what the tests need to look at it."""

    name: str
    worker: WorkerStorePort
    enqueue: EnqueueStorePort
    get: Callable[[int], JobSnapshot | None]
    now: Callable[[], datetime]
    in_transaction: Callable[[], contextlib.AbstractContextManager[Any]]
    hold_lease: Callable[[int], None]
    status: Callable[[int], JobStatus | None]
    gates: GateStorePort
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def _fake() -> Backend:
    store = InMemoryJobStore()
    return Backend(
        name="fake",
        worker=store,
        enqueue=store,
        get=store.get,
        now=store.now,
        in_transaction=lambda: contextlib.nullcontext(object()),
        hold_lease=store.hold_lease,
        status=store.status,
        gates=store,
    )


def _real(tq: Any) -> Backend:
    app = tq.app
    backend = Backend(
        name="real",
        worker=app.store.worker,
        enqueue=app.store.enqueue,
        get=app.store.admin.get,
        now=app.store.admin.db_now,
        in_transaction=app.engine.begin,
        hold_lease=lambda key: None,
        status=app.store.status.read,
        gates=app.store.gates,
    )

    def hold_lease(key: int) -> None:
        # what a live worker holds: its session-level advisory lock, for as long as it lives
        lease = psycopg.connect(libpq(tq.database_url), autocommit=True)
        lease.execute("SELECT pg_advisory_lock(%s::int, %s::int)", (ADVISORY_NAMESPACE, key))
        backend.cleanups.append(lease.close)

    backend.hold_lease = hold_lease
    return backend


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    chosen = _fake() if request.param == "fake" else _real(request.getfixturevalue("tq"))
    yield chosen
    for cleanup in chosen.cleanups:
        cleanup()


def new(handler: str = '{"n": 0}', priority: int = 0, run_at: datetime | None = None) -> NewJob:
    return NewJob(handler=handler, priority=priority, run_at=run_at, queue=None)


def one_due(backend: Backend) -> JobSnapshot:
    [row] = backend.enqueue.insert_committed([new()])
    return row


def locked(backend: Backend, row: JobSnapshot, by: str = HOLDER, key: int = HOLDER_KEY):
    result = backend.worker.lock_for_run(row.id, row.digest, by, key)
    assert result.admission is Admission.RUN
    assert result.row is not None
    return result.row


# -- enqueue --------------------------------------------------------------------------------


def test_insert_returns_rows_in_the_order_given_with_ascending_ids(backend):
    news = [new('{"n": 3}', 5), new('{"n": 1}', -1), new('{"n": 2}', 0)]
    rows = backend.enqueue.insert_committed(news)
    assert [row.handler for row in rows] == [job.handler for job in news]
    assert [row.priority for row in rows] == [5, -1, 0]
    ids = [row.id for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == 3
    for row in rows:
        assert (row.attempts, row.crashes, row.last_error) == (0, 0, None)
        assert row.locked_by is None and row.locked_at is None and row.failed_at is None
        assert backend.get(row.id) == row


def test_insert_in_the_callers_connection_is_there_after_the_commit(backend):
    with backend.in_transaction() as conn:
        rows = backend.enqueue.insert(conn, [new('{"a": 1}'), new('{"b": 2}')])
    assert [row.handler for row in rows] == ['{"a": 1}', '{"b": 2}']
    assert rows[0].id < rows[1].id
    assert [backend.get(row.id) for row in rows] == rows


def test_due_rows_are_released_at_once_and_future_rows_wait(backend):
    now = backend.now()
    later = now + timedelta(hours=1)
    unset, past, future = backend.enqueue.insert_committed(
        [new(), new(run_at=now - timedelta(minutes=1)), new(run_at=later)]
    )
    assert unset.released_at is not None and unset.run_at <= backend.now()
    assert past.released_at is not None and past.run_at == now - timedelta(minutes=1)
    assert future.released_at is None and future.run_at == later


def test_unrelease_hands_pending_rows_back_but_leaves_failed_ones(backend):
    pending, failed = backend.enqueue.insert_committed([new(), new()])
    backend.worker.fail_held(failed.id, HOLDER, "x")  # not held: no change
    held = locked(backend, failed)
    after_fail = backend.worker.fail_held(held.id, HOLDER, "failed for good")
    assert after_fail is not None and after_fail.released_at is not None
    backend.enqueue.unrelease([pending.id, failed.id, 987_654])
    assert backend.get(pending.id).released_at is None
    assert backend.get(failed.id).released_at == after_fail.released_at
    backend.enqueue.unrelease([])  # nothing to do


# -- the lock -------------------------------------------------------------------------------


def test_a_due_row_is_locked_by_one_attempt_and_another_attempt_is_dropped(backend):
    row = one_due(backend)
    mine = locked(backend, row)
    assert (mine.locked_by, mine.lock_key) == (HOLDER, HOLDER_KEY)
    assert mine.locked_at is not None and mine.digest == row.digest
    assert backend.get(row.id) == mine
    backend.hold_lease(HOLDER_KEY)
    other = backend.worker.lock_for_run(row.id, row.digest, OTHER, OTHER_KEY)
    assert other.admission is Admission.DROP_LOCKED
    assert other.row == mine
    assert backend.get(row.id) == mine


def test_a_row_held_under_a_dead_lease_is_orphaned_not_run(backend):
    row = one_due(backend)
    mine = locked(backend, row)  # HOLDER_KEY's lease is not held: its worker is gone
    other = backend.worker.lock_for_run(row.id, row.digest, OTHER, OTHER_KEY)
    assert other.admission is Admission.ORPHANED
    assert backend.get(row.id) == mine


def test_a_lock_whose_reply_was_lost_is_recognised_as_our_own(backend):
    row = one_due(backend)
    mine = locked(backend, row)
    again = backend.worker.lock_for_run(row.id, row.digest, HOLDER, HOLDER_KEY)
    assert again.admission is Admission.RUN_OWN_LOCK
    assert again.row is not None and again.row.locked_by == HOLDER
    assert again.row.id == mine.id


def test_a_stale_digest_is_dropped_and_the_row_left_alone(backend):
    row = one_due(backend)
    result = backend.worker.lock_for_run(row.id, "0" * 24, HOLDER, HOLDER_KEY)
    assert result.admission is Admission.DROP_STALE
    assert backend.get(row.id) == row


def test_a_missing_row_is_dropped(backend):
    result = backend.worker.lock_for_run(987_654, "0" * 24, HOLDER, HOLDER_KEY)
    assert result.admission is Admission.DROP_MISSING
    assert result.row is None
    assert result.db_now.tzinfo is not None


def test_a_future_row_is_deferred_unlocked(backend):
    [row] = backend.enqueue.insert_committed([new(run_at=backend.now() + timedelta(hours=1))])
    result = backend.worker.lock_for_run(row.id, row.digest, HOLDER, HOLDER_KEY)
    assert result.admission is Admission.DEFER
    assert result.row == row
    after = backend.get(row.id)
    assert after.locked_by is None and after.released_at is None
    assert result.db_now < row.run_at


def test_a_failed_row_is_dropped(backend):
    row = one_due(backend)
    backend.worker.fail_held(row.id, HOLDER, "no")  # not held yet: nothing happens
    assert backend.get(row.id).failed_at is None
    locked(backend, row)
    backend.worker.fail_held(row.id, HOLDER, "no")
    result = backend.worker.lock_for_run(row.id, row.digest, OTHER, OTHER_KEY)
    assert result.admission is Admission.DROP_FAILED


# -- after the run --------------------------------------------------------------------------


def test_only_the_holding_attempt_deletes_the_row(backend):
    row = one_due(backend)
    assert backend.worker.delete_succeeded(row.id, HOLDER) is False  # nobody holds it
    locked(backend, row)
    assert backend.worker.delete_succeeded(row.id, OTHER) is False
    assert backend.get(row.id) is not None
    assert backend.worker.delete_succeeded(row.id, HOLDER) is True
    assert backend.get(row.id) is None
    assert backend.worker.delete_succeeded(row.id, HOLDER) is False


def test_a_failure_with_a_retry_time_reschedules_and_unlocks(backend):
    row = one_due(backend)
    locked(backend, row)
    retry_at = backend.now() + timedelta(hours=1)
    assert backend.worker.record_failure(row.id, OTHER, 1, "not mine", retry_at) is None
    after = backend.worker.record_failure(row.id, HOLDER, 1, "boom\x00", retry_at)
    assert after is not None
    assert after.attempts == 1 and after.run_at == retry_at
    assert after.last_error == "boom\\x00"  # made storable, as PostgreSQL needs
    assert after.failed_at is None and after.released_at is None
    assert (after.locked_by, after.locked_at, after.lock_key, after.crashes) == (None,) * 3 + (0,)
    assert backend.get(row.id) == after
    # the row changed, so the old notification is stale, and the new one waits its time
    stale = backend.worker.lock_for_run(row.id, row.digest, HOLDER, HOLDER_KEY)
    assert stale.admission is Admission.DROP_STALE
    fresh = backend.worker.lock_for_run(row.id, after.digest, HOLDER, HOLDER_KEY)
    assert fresh.admission is Admission.DEFER
    assert backend.worker.record_failure(row.id, HOLDER, 2, "not held now", None) is None


def test_a_failure_without_a_retry_time_fails_for_good(backend):
    row = one_due(backend)
    locked(backend, row)
    after = backend.worker.record_failure(row.id, HOLDER, 3, "gave up", None)
    assert after is not None
    assert after.failed_at is not None and after.attempts == 3
    assert after.run_at == row.run_at and after.last_error == "gave up"
    assert after.locked_by is None
    assert backend.get(row.id) == after


def test_fail_held_fails_the_row_for_good_without_counting_a_run(backend):
    row = one_due(backend)
    assert backend.worker.fail_held(row.id, HOLDER, "not held") is None
    locked(backend, row)
    assert backend.worker.fail_held(row.id, OTHER, "not mine") is None
    after = backend.worker.fail_held(row.id, HOLDER, "unknown class\x00")
    assert after is not None
    assert after.failed_at is not None and after.attempts == 1  # at least one, to show
    assert after.last_error == "unknown class\\x00"
    assert after.locked_by is None and after.lock_key is None and after.run_at == row.run_at
    assert backend.get(row.id) == after


def test_hand_back_unlocks_the_held_row_unrun_and_leaves_it_unannounced(backend):
    row = one_due(backend)
    assert backend.worker.hand_back(row.id, HOLDER) is False  # not held
    locked(backend, row)
    assert backend.worker.hand_back(row.id, OTHER) is False  # not this attempt's
    assert backend.worker.hand_back(row.id, HOLDER) is True
    after = backend.get(row.id)
    assert after is not None
    assert after.locked_by is None and after.locked_at is None and after.lock_key is None
    assert after.released_at is None  # to be announced again, to its own queue
    assert after.attempts == row.attempts and after.digest == row.digest
    assert backend.worker.hand_back(row.id, HOLDER) is False  # once


# -- unique jobs (the partial unique index of migration 0006, and the fake's copy) ---------


def keyed(key: str, n: int = 0) -> NewJob:
    return NewJob(handler=f'{{"n": {n}}}', priority=0, run_at=None, queue=None, unique_key=key)


def test_a_unique_job_with_a_waiting_twin_is_not_written(backend):
    [first] = backend.enqueue.insert_committed([keyed("C k")])
    written = backend.enqueue.insert_committed([keyed("C k", 1), keyed("C other"), keyed("C k", 2)])
    assert [row.unique_key for row in written] == ["C other"]
    assert backend.enqueue.waiting_twins(None, ["C k", "C none"]) == {"C k": first.id}
    # in the caller's transaction too
    with backend.in_transaction() as conn:
        assert backend.enqueue.insert(conn, [keyed("C k", 3)]) == []
        assert backend.enqueue.waiting_twins(conn, ["C k"]) == {"C k": first.id}


def test_a_running_or_failed_job_is_no_twin(backend):
    [first] = backend.enqueue.insert_committed([keyed("C run")])
    locked(backend, first)
    [second] = backend.enqueue.insert_committed([keyed("C run", 1)])
    assert backend.enqueue.waiting_twins(None, ["C run"]) == {"C run": second.id}
    locked(backend, second, by=OTHER)
    backend.worker.fail_held(second.id, OTHER, "failed for good")
    [third] = backend.enqueue.insert_committed([keyed("C run", 2)])
    assert third.unique_key == "C run"


def test_a_retry_keeps_its_key_unless_a_twin_waits_and_then_both_run(backend):
    [alone] = backend.enqueue.insert_committed([keyed("C alone")])
    locked(backend, alone)
    kept = backend.worker.record_failure(alone.id, HOLDER, 1, "boom", alone.run_at)
    assert kept is not None and kept.unique_key == "C alone"
    [first] = backend.enqueue.insert_committed([keyed("C twin")])
    locked(backend, first, by=OTHER)
    [twin] = backend.enqueue.insert_committed([keyed("C twin", 1)])  # while first runs
    dropped = backend.worker.record_failure(first.id, OTHER, 1, "boom", first.run_at)
    assert dropped is not None and dropped.unique_key is None  # waits on, without the key
    assert backend.get(twin.id).unique_key == "C twin"
    assert backend.enqueue.waiting_twins(None, ["C twin"]) == {"C twin": twin.id}


def test_a_hand_back_keeps_its_key_unless_a_twin_waits(backend):
    [first] = backend.enqueue.insert_committed([keyed("C hb")])
    locked(backend, first)
    [twin] = backend.enqueue.insert_committed([keyed("C hb", 1)])
    assert backend.worker.hand_back(first.id, HOLDER)
    assert backend.get(first.id).unique_key is None
    assert backend.get(twin.id).unique_key == "C hb"


# -- the history row behind tomqueue.status ---------------------------------------------


def test_a_run_reports_while_it_holds_the_row_and_its_delete_completes_it(backend):
    row = one_due(backend)
    assert backend.status(row.id) == JobStatus(row.id, "queued")
    locked(backend, row)
    assert backend.status(row.id) == JobStatus(row.id, "working")
    report = StatusReport(2, 8, {"step": "B"})
    assert backend.worker.write_status(row.id, OTHER, "C", report) is False  # not its run
    assert backend.worker.write_status(row.id, HOLDER, "C", report) is True
    assert backend.status(row.id) == JobStatus(row.id, "working", 2, 8, {"step": "B"})
    final = Ended("C", 3600.0, StatusReport(8, None, None))  # total and fields kept
    assert backend.worker.delete_succeeded(row.id, HOLDER, final) is True
    assert backend.status(row.id) == JobStatus(row.id, "completed", 8, 8, {"step": "B"})
    assert backend.worker.write_status(row.id, HOLDER, "C", report) is False  # gone


def test_a_job_failed_for_good_is_failed_and_a_retry_is_queued(backend):
    first, second = backend.enqueue.insert_committed([new(), new()])
    locked(backend, first)
    backend.worker.write_status(first.id, HOLDER, "C", StatusReport(None, None, {"at": 1}))
    retry_at = backend.now() + timedelta(hours=1)
    backend.worker.record_failure(first.id, HOLDER, 1, "boom", retry_at, Ended("C", 60.0))
    assert backend.status(first.id) == JobStatus(first.id, "queued", fields={"at": 1})
    locked(backend, second)
    backend.worker.fail_held(second.id, HOLDER, "unknown class", Ended("X", 60.0))
    assert backend.status(second.id) == JobStatus(second.id, "failed")


def test_an_expired_or_unknown_status_is_none(backend):
    row = one_due(backend)
    locked(backend, row)
    backend.worker.delete_succeeded(row.id, HOLDER, Ended("C", 0.001))
    wait_until(lambda: backend.status(row.id) is None, timeout=5, message="expiry")
    assert backend.status(987_654) is None


# -- gates: a slot belongs to the thread (its connection) that took it ---------------------


class SlotThread:
    """A thread of its own, as a worker slot is: what it takes, it holds until it leaves."""

    def __init__(self, backend: Backend) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        backend.cleanups.append(lambda: self._pool.shutdown(wait=True))

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._pool.submit(fn, *args).result(timeout=10)


def test_each_slot_of_a_gate_is_held_by_one_thread_until_it_leaves(backend):
    gate = limit_gate("contract.Limited", 2)
    a, b, c = SlotThread(backend), SlotThread(backend), SlotThread(backend)
    slot_a, slot_b = a(backend.gates.take, gate), b(backend.gates.take, gate)
    assert {slot_a, slot_b} == {1, 2}
    assert c(backend.gates.take, gate) is None
    a(backend.gates.leave, gate, slot_a)
    assert c(backend.gates.take, gate) == slot_a
    b(backend.gates.leave, gate, slot_b)
    c(backend.gates.leave, gate, slot_a)


def test_a_parked_job_waits_unlocked_with_no_attempt_and_wakes_when_a_slot_frees(backend):
    gate = limit_gate("contract.Limited", 1)
    holder, other = SlotThread(backend), SlotThread(backend)
    slot = holder(backend.gates.take, gate)
    low, high = backend.enqueue.insert_committed([new(priority=5), new(priority=1)])
    for row in (low, high):
        locked(backend, row)
        assert backend.gates.park(gate, row.id, OTHER) is False  # not this attempt's row
        assert backend.gates.park(gate, row.id, HOLDER) is True
        parked = backend.get(row.id)
        assert parked.parked_on == gate.name and parked.locked_by is None
        assert parked.attempts == 0 and parked.released_at is not None
    assert other(backend.gates.wake, gate) == []  # the one slot is held
    holder(backend.gates.leave, gate, slot)
    [woken] = other(backend.gates.wake, gate)
    assert woken.id == high.id and woken.parked_on is None  # best priority first
    assert backend.get(low.id).parked_on == gate.name


def test_a_serial_key_passes_its_lowest_id_only_and_wakes_the_next_when_it_is_gone(backend):
    first, second = backend.enqueue.insert_committed(
        [
            NewJob('{"n": 1}', 0, None, None, serial_key="k"),
            NewJob('{"n": 2}', 0, None, None, serial_key="k"),
        ]
    )
    gate = serial_gate("k")
    (slot,) = gate.slots
    a, b = SlotThread(backend), SlotThread(backend)
    assert a(backend.gates.take_turn, gate, second.id) == (True, True)  # behind the first
    a(backend.gates.leave, gate, slot)
    assert a(backend.gates.take_turn, gate, first.id) == (True, False)
    assert b(backend.gates.take_turn, gate, second.id) == (False, True)
    locked(backend, second)
    assert backend.gates.park(gate, second.id, HOLDER)
    assert b(backend.gates.wake, gate) == []  # not its turn: the first is in the table
    locked(backend, first)
    assert backend.worker.delete_succeeded(first.id, HOLDER)
    assert b(backend.gates.wake, gate) == []  # its turn, but the key's slot is still held
    a(backend.gates.leave, gate, slot)
    [woken] = b(backend.gates.wake, gate)
    assert woken.id == second.id and woken.serial_key == "k"
