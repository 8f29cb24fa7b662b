"""Announcer with a fake publisher: batching, retries, give-up, flush and close."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from tomqueue.announcer import Announcer
from tomqueue.errors import BrokerUnavailableError
from tomqueue.priority import NORMAL_PRIORITY
from tomqueue.settings import Settings
from tomqueue.wire import Notification


def note(job_id: int) -> Notification:
    return Notification(job_id=job_id, digest="ab", level=NORMAL_PRIORITY, run_at=datetime.now(UTC))


class FakePublisher:
    """Records batches; fails the first ``failures`` sends; may block until released."""

    def __init__(self, failures: int = 0, gate: threading.Event | None = None) -> None:
        self.failures = failures
        self.gate = gate
        self.batches: list[list[int]] = []
        self.deferred: list[list[int]] = []
        self.closed = False

    def publish(self, notes):
        if self.gate is not None:
            self.gate.wait(5)
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailableError("broker down")
        self.batches.append([n.job_id for n in notes])

    def publish_deferred(self, notes):
        self.deferred.append([n.job_id for n in notes])

    def close(self):
        self.closed = True


def wait_taken(announcer: Announcer) -> None:
    for _ in range(500):
        if not announcer._queue:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the announcer thread never took its first batch")


def make(publisher: FakePublisher, **kwargs):
    given_up: list[int] = []
    announcer = Announcer(
        Settings(publish_timeout=timedelta(seconds=0.2)),
        give_up=lambda notes: given_up.extend(n.job_id for n in notes),
        publisher_factory=lambda settings: publisher,  # type: ignore[arg-type,return-value]
        **kwargs,
    )
    return announcer, given_up


def test_what_queues_up_while_a_batch_is_sent_goes_as_one_batch():
    gate = threading.Event()
    publisher = FakePublisher(gate=gate)
    announcer, given_up = make(publisher)
    announcer.submit([note(1)])
    wait_taken(announcer)  # the thread holds note 1, stuck in the broker call
    for n in range(2, 12):
        announcer.submit([note(n)])
    gate.set()
    assert announcer.flush(5)
    assert publisher.batches[0] == [1]
    assert sorted(n for batch in publisher.batches[1:] for n in batch) == list(range(2, 12))
    assert len(publisher.batches) <= 3 and given_up == []
    announcer.close(1)
    assert publisher.closed


def test_a_failed_send_is_retried_and_then_confirmed():
    publisher = FakePublisher(failures=2)
    announcer, given_up = make(publisher, tries=3)
    announcer.submit([note(1), note(2)])
    assert announcer.flush(5)
    assert publisher.batches == [[1, 2]] and given_up == []
    announcer.close(1)


def test_what_keeps_failing_is_given_up_and_flush_says_so():
    publisher = FakePublisher(failures=100)
    announcer, given_up = make(publisher, tries=2)
    announcer.submit([note(1), note(2)])
    assert not announcer.flush(5)
    assert given_up == [1, 2]
    announcer.close(1)


def test_deferred_wake_ups_are_sent_apart_and_never_given_up():
    publisher = FakePublisher()
    announcer, given_up = make(publisher)
    announcer.submit([note(1)])
    announcer.submit([note(2)], deferred=True)
    assert announcer.flush(5)
    assert publisher.batches == [[1]] and publisher.deferred == [[2]] and given_up == []
    announcer.close(1)


def test_close_gives_up_what_it_could_not_send_in_time():
    gate = threading.Event()
    publisher = FakePublisher(gate=gate)
    announcer, given_up = make(publisher)
    announcer.submit([note(1)])
    wait_taken(announcer)
    announcer.submit([note(2), note(3)])
    announcer.close(0.2)  # the first batch is stuck in the broker call
    assert given_up == [2, 3]
    gate.set()
    announcer.submit([note(4)])  # after close: nothing is queued, the row goes to the sweep
    assert given_up == [2, 3, 4]


@pytest.mark.parametrize("max_pending, expected_given_up", [(2, [3, 4]), (10, [])])
def test_a_full_queue_waits_a_bounded_time_then_gives_up_the_overflow(
    max_pending, expected_given_up
):
    gate = threading.Event()
    publisher = FakePublisher(gate=gate)
    announcer, given_up = make(publisher, max_pending=max_pending)
    announcer.submit([note(0)])
    wait_taken(announcer)  # the thread holds note 0, stuck in the broker call
    announcer.submit([note(1), note(2), note(3), note(4)])
    assert given_up == expected_given_up
    gate.set()
    announcer.close(2)
