"""tomqueue.testing: the helpers applications use in their own tests."""

import pytest

import tomqueue
from tests.jobs import AlwaysFails, Hooked, Record
from tomqueue.testing import enqueued, perform_now, work_off
from tomqueue.worker.outcome import Outcome

pytestmark = pytest.mark.integration


def test_perform_now_runs_hooks_in_order(tq):
    assert perform_now(Hooked("inline")) is Outcome.SUCCEEDED
    assert tq.events("inline") == ["before", "perform", "success", "after"]
    assert perform_now(AlwaysFails("inline-bad")) is Outcome.ATTEMPT_FAILED


def test_enqueued_and_work_off(tq):
    tomqueue.enqueue(Record("a"))
    tomqueue.enqueue(AlwaysFails("b"))
    assert [row.class_name for row in enqueued(Record)] == ["tests.jobs.Record"]
    assert len(enqueued()) == 2
    outcomes = work_off()
    assert outcomes[Outcome.SUCCEEDED] == 1 and outcomes[Outcome.RETRY_SCHEDULED] == 1
    assert enqueued(Record) == []
