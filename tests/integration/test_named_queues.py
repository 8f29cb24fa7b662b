"""Named queues on the real servers: a ``--queues`` split across worker processes, a worker
serving every queue finding new ones, misrouted messages handed back, lost notifications of
a named queue healed, fair sharing between queues, and bad names refused."""

import json
import subprocess
import sys
import time

import pika
import pytest

import tomqueue
from tests.conftest import stop_process, wait_until
from tests.jobs import Billing, Record
from tomqueue.broker import Topology
from tomqueue.priority import PriorityLevel
from tomqueue.wire import CONTENT_TYPE

pytestmark = pytest.mark.integration


def pids_of(tq, label_prefix: str) -> set[int]:
    rows = tq.sql("SELECT DISTINCT pid FROM test_runs WHERE label LIKE %s", f"{label_prefix}%")
    return {pid for (pid,) in rows}


def test_a_queues_split_across_processes_runs_each_job_on_a_worker_serving_its_queue(tq):
    billing = tq.spawn("worker", "--queues", "billing", "--concurrency", "2")
    others = tq.spawn("worker", "--queues", "default,reports", "--concurrency", "2")
    ids = tomqueue.enqueue_many([Billing(f"bill{n}") for n in range(30)])
    ids += tomqueue.enqueue_many([Record(f"plain{n}") for n in range(30)])
    ids += tomqueue.enqueue_many([Record(f"report{n}") for n in range(30)], queue="reports")
    ids += tomqueue.enqueue_many([Record(f"else{n}") for n in range(5)], queue="elsewhere")
    wait_until(lambda: tq.scalar("SELECT count(*) FROM test_runs") >= 90, timeout=60)
    wait_until(lambda: tq.pending_count() == 5, timeout=30, message="only 'elsewhere' left")
    assert pids_of(tq, "bill") == {billing.pid}
    assert pids_of(tq, "plain") == {others.pid}
    assert pids_of(tq, "report") == {others.pid}
    assert tq.scalar("SELECT count(*) FROM test_runs WHERE label LIKE 'else%'") == 0
    runs = tq.sql("SELECT label, count(*) FROM test_runs GROUP BY label HAVING count(*) > 1")
    assert runs == [], "a job ran twice"
    # the 'elsewhere' jobs wait, announced, in their own queue's RabbitMQ queue
    assert tq.queue_depth(Topology(tq.prefix).queue_for(PriorityLevel.NORMAL, "elsewhere")) == 5
    assert stop_process(billing) == 0 and stop_process(others) == 0
    # a worker serving every queue finds the queue that had none
    every = tq.spawn("worker")
    wait_until(lambda: tq.pending_count() == 0, timeout=30, message="'elsewhere' drained")
    assert pids_of(tq, "else") == {every.pid}


def test_a_worker_serving_every_queue_finds_a_queue_created_after_it_started(tq, run_worker):
    run_worker(concurrency=2)
    first = tomqueue.enqueue(Record("first"), queue="brand-new")
    wait_until(lambda: tq.job(first) is None, timeout=15, message="the new queue found")
    started = time.monotonic()
    second = tomqueue.enqueue(Record("second"), queue="brand-new")
    wait_until(lambda: tq.job(second) is None, timeout=15)
    assert time.monotonic() - started < 2, "once subscribed, a named queue is served at once"
    assert tq.count_runs("first") == 1 and tq.count_runs("second") == 1


def test_queue_name_on_the_class_and_queue_on_enqueue_choose_the_queue(tq):
    on_class = tomqueue.enqueue(Billing("a"))
    on_call = tomqueue.enqueue(Billing("b"), queue="urgent")
    default = tomqueue.enqueue(Record("c"), queue="default")
    assert tq.job(on_class)["queue"] == "billing"
    assert tq.job(on_call)["queue"] == "urgent"
    assert tq.job(default)["queue"] is None  # 'default' is the queue of jobs with none


@pytest.mark.parametrize("bad", ["", "has space", "wild*card", "hash#", "x" * 101, "-lead"])
def test_a_bad_queue_name_is_refused_and_nothing_is_written(tq, bad):
    with pytest.raises(ValueError, match="queue must be 1 to 100 letters"):
        tomqueue.enqueue(Record("never"), queue=bad)
    assert tq.scalar("SELECT count(*) FROM tomqueue_jobs") == 0


def test_a_bad_queues_option_stops_the_worker_at_start(tq):
    result = subprocess.run(
        [sys.executable, "-m", "tomqueue.worker", "--app", "tests.jobs", "--queues", "a,no way"],
        env=tq.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--queues name must be 1 to 100 letters" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misrouted_message_is_handed_back_and_runs_once_on_its_queue(tq):
    """A billing job's message in the default queue (routed before named queues existed, or
    by hand) is taken by a default-only worker, handed back unrun, and run by billing's."""
    job_id = tomqueue.enqueue(Billing("moved"))
    tq.flush_announcements()
    topology = Topology(tq.prefix)
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    try:
        channel = connection.channel()
        # take billing's own message away, and put a copy in the default queue
        method, _, body = channel.basic_get(topology.queue_for(PriorityLevel.NORMAL, "billing"))
        assert method is not None and json.loads(body)["queue"] == "billing"
        channel.basic_ack(method.delivery_tag)
        channel.basic_publish(
            topology.work_exchange,
            topology.routing_key(PriorityLevel.NORMAL),
            body,
            pika.BasicProperties(content_type=CONTENT_TYPE, delivery_mode=2),
        )
    finally:
        connection.close()
    default_only = tq.spawn("worker", "--queues", "default")
    billing_queue = topology.queue_for(PriorityLevel.NORMAL, "billing")
    # handed back unrun, then announced again by a sweep, this time to billing's queue
    wait_until(lambda: tq.queue_depth(billing_queue) == 1, timeout=20, message="re-announced")
    assert tq.queue_depth(topology.queue_for(PriorityLevel.NORMAL)) == 0
    assert tq.job(job_id)["attempts"] == 0 and tq.job(job_id)["locked_by"] is None
    assert tq.count_runs("moved") == 0
    billing = tq.spawn("worker", "--queues", "billing")
    wait_until(lambda: tq.job(job_id) is None, timeout=30, message="run on billing's worker")
    assert tq.count_runs("moved") == 1
    assert pids_of(tq, "moved") == {billing.pid}
    assert stop_process(default_only) == 0


def test_a_lost_notification_of_a_named_queue_is_republished_to_that_queue(tq, run_worker):
    tomqueue.configure(republish_after=1.0, sweep_interval=0.5)
    job_id = tomqueue.enqueue(Billing("healed"))
    tq.flush_announcements()
    billing_queue = Topology(tq.prefix).queue_for(PriorityLevel.NORMAL, "billing")
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    try:
        assert connection.channel().queue_purge(billing_queue).method.message_count == 1
    finally:
        connection.close()
    tomqueue.configure(queues="default")  # a default-only worker sweeps for every queue
    run_worker()
    wait_until(lambda: tq.queue_depth(billing_queue) == 1, timeout=20, message="republished")
    assert tq.job(job_id) is not None and tq.count_runs("healed") == 0
    tomqueue.configure(queues="billing")
    run_worker()
    wait_until(lambda: tq.job(job_id) is None, timeout=20)
    assert tq.count_runs("healed") == 1


def test_a_backlog_in_one_queue_does_not_hold_back_anothers_job(tq, run_worker):
    """The fair-sharing rule: within a level, a worker takes its messages in hand from its
    named queues in turn, so once queue B's message is in hand it is the next but one a
    slot takes, however many of queue A's wait. Before that, the worker reads pushes only
    when its hand runs low: B's job waits behind at most about two prefetch windows of A's
    jobs (6 x concurrency), not behind A's backlog."""
    tomqueue.enqueue_many([Record(f"a{n}") for n in range(400)], queue="bulk-a")
    tomqueue.configure(queues="bulk-a,b")
    worker = run_worker(concurrency=2)
    wait_until(lambda: tq.scalar("SELECT count(*) FROM test_runs") >= 20, timeout=30)
    ran_at_enqueue = tq.scalar("SELECT max(id) FROM test_runs")
    b_id = tomqueue.enqueue(Record("b-job"), queue="b", wait_for_broker=True)
    wait_until(lambda: tq.job(b_id) is None, timeout=30, message="b's job ran")
    assert tq.pending_count() > 100, "the backlog was still there when b's job ran"
    a_in_between = tq.scalar(
        "SELECT count(*) FROM test_runs WHERE id > %s "
        "AND id < (SELECT id FROM test_runs WHERE label = 'b-job')",
        ran_at_enqueue,
    )
    # the jobs the slots were running, and the hand's takes until the push was read
    bound = 2 * worker.consumer.prefetch + 2 * worker.concurrency
    assert a_in_between <= bound, (a_in_between, bound)
