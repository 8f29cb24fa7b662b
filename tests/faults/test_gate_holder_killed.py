"""A SIGKILLed worker frees its concurrency-limit slots and its serial key at once (its
advisory locks die with its connection): the jobs parked behind it start within seconds,
and the killed jobs themselves run again through the orphan path, still within the limit."""

import signal
import time

import pytest

import tomqueue
from tests.conftest import wait_until
from tests.integration.test_flow_gates import intervals, most_at_once, run_order
from tests.jobs import InOrder, Limited

pytestmark = pytest.mark.faults


def started(tq, label: str) -> set[str]:
    rows = tq.sql("SELECT detail FROM test_runs WHERE label = %s AND event = 'start'", label)
    return {tag for (tag,) in rows}


def test_a_sigkilled_holder_frees_its_slots_within_seconds(tq, fast_env):
    env = fast_env | {"TOMQUEUE_ORPHAN_GRACE": "30"}  # the killed jobs stay orphans meanwhile
    doomed = tq.spawn("worker", "--concurrency", "2", env=env)
    tomqueue.enqueue_many([Limited("kill", f"long{n}", seconds=60) for n in range(2)])
    wait_until(lambda: started(tq, "kill") == {"long0", "long1"}, timeout=20)
    survivor = tq.spawn("worker", "--concurrency", "4", env=env)
    tomqueue.enqueue_many([Limited("kill", f"short{n}", seconds=0.1) for n in range(4)])
    wait_until(
        lambda: tq.scalar("SELECT count(*) FROM tomqueue_jobs WHERE parked_on IS NOT NULL") == 4,
        timeout=15,
        message="the short jobs parked behind the two long ones",
    )
    time.sleep(1.0)
    assert started(tq, "kill") == {"long0", "long1"}, "the limit let a third job in"
    killed_at = tq.scalar("SELECT clock_timestamp()")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    wait_until(
        lambda: {f"short{n}" for n in range(4)} <= started(tq, "kill"),
        timeout=15,
        message="the parked jobs ran once the holder died",
    )
    first = tq.scalar(
        "SELECT min(at) FROM test_runs WHERE label = 'kill' AND detail LIKE 'short%%'"
    )
    assert (first - killed_at).total_seconds() < 5.0
    finished = {tag: span for tag, span in intervals(tq, "kill").items() if len(span) == 2}
    assert most_at_once(finished) <= 2
    survivor.send_signal(signal.SIGKILL)
    survivor.wait()


def test_a_sigkilled_serial_job_frees_its_key_and_the_order_holds(tq, fast_env):
    env = fast_env | {"TOMQUEUE_ORPHAN_GRACE": "1"}
    doomed = tq.spawn("worker", "--concurrency", "2", env=env)
    tomqueue.enqueue(InOrder("acct-k", 0, seconds=3))
    tomqueue.enqueue_many([InOrder("acct-k", n) for n in range(1, 4)])
    wait_until(lambda: started(tq, "acct-k") == {"0"}, timeout=20)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    # job 0 is still first: the orphan path runs it again, and then 1, 2 and 3 follow
    tq.spawn("worker", "--concurrency", "4", env=env)
    wait_until(lambda: tq.pending_count() == 0, timeout=40, message="the key drained")
    assert run_order(tq, "acct-k") == [0, 1, 2, 3]
    assert most_at_once({k: v for k, v in intervals(tq, "acct-k").items() if len(v) == 2}) == 1
