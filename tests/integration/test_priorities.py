"""Delayed::Job's priorities without a priority_map: lower numbers run first."""

import pytest

import tomqueue
from tests.conftest import wait_until
from tests.jobs import Record

pytestmark = pytest.mark.integration


def test_without_a_map_lower_priority_numbers_run_first(tq, run_worker):
    for priority in (20, 5, 0, -1):  # enqueued worst first: the order must come from priority
        tomqueue.enqueue(Record(f"p{priority}"), priority=priority)
    tq.flush_announcements()  # all four wait in their queues before the worker starts
    run_worker(concurrency=1)
    wait_until(lambda: tq.pending_count() == 0, timeout=30, message="all four jobs ran")
    order = [r[0] for r in tq.sql("SELECT label FROM test_runs ORDER BY id")]
    assert order == ["p-1", "p0", "p5", "p20"]
