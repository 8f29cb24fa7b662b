"""Worker stack against real servers: run, fail, retry, time out, and refuse bad input."""

import time
from datetime import timedelta

import pika
import pytest

import tomqueue
from tests.conftest import wait_until
from tests.jobs import FlakyUntil, Hooked, Record, Sleepy, Slow
from tomqueue.broker import Topology

pytestmark = pytest.mark.integration


def test_committed_job_runs_and_its_row_is_deleted(tq, run_worker):
    job_id = tomqueue.enqueue(Record("ran"))
    run_worker()
    wait_until(lambda: tq.job(job_id) is None, message="row deleted")
    assert tq.count_runs("ran") == 1


def test_hooks_in_delayed_job_order_on_success(tq, run_worker):
    job_id = tomqueue.enqueue(Hooked("ok"))
    run_worker()
    wait_until(lambda: tq.job(job_id) is None)
    wait_until(lambda: len(tq.events("ok")) == 4)
    assert tq.events("ok") == ["before", "perform", "success", "after"]


def test_hooks_and_final_failure_keep_the_row(tq, run_all):
    job_id = tomqueue.enqueue(Hooked("bad", fail=True))
    run_all()
    wait_until(lambda: (tq.job(job_id) or {}).get("failed_at") is not None, message="failed_at")
    row = tq.job(job_id)
    assert row["attempts"] == 3
    assert row["last_error"].startswith("RuntimeError: bad failed on purpose")
    assert "Traceback" in row["last_error"]
    assert row["locked_by"] is None
    one_attempt = ["before", "perform", "error", "after"]
    assert tq.events("bad") == one_attempt * 3 + ["failure"]


def test_retries_then_success(tq, run_all):
    job_id = tomqueue.enqueue(FlakyUntil("flaky", succeed_on=3))
    run_all()
    wait_until(lambda: tq.job(job_id) is None, timeout=20, message="eventual success")
    assert tq.count_runs("flaky") == 3


def test_timeout_stops_a_sleeping_job_and_the_worker_goes_on(tq, run_worker):
    # time.sleep is C: the JobTimeout raised at 1 s lands when the sleep returns, at 3 s,
    # and the row stays locked until then (never a retry beside a running first attempt)
    slow = tomqueue.enqueue(Sleepy("sleeper", seconds=3))
    after = tomqueue.enqueue(Record("next"))
    run_worker()
    wait_until(lambda: tq.count_runs("sleeper", "start") == 1)
    time.sleep(1.5)
    assert tq.job(slow)["locked_by"] is not None, "unlocked while the job still sleeps"
    wait_until(lambda: (tq.job(slow) or {}).get("failed_at") is not None, timeout=10)
    assert "JobTimeout" in tq.job(slow)["last_error"]
    assert "exceeded max_run_time of 1s" in tq.job(slow)["last_error"]
    wait_until(lambda: tq.job(after) is None, message="next job ran")
    assert tq.count_runs("sleeper", "woke") == 0


def test_timeouts_with_concurrency_stop_each_job_on_time(tq, run_worker):
    ids = [tomqueue.enqueue(Sleepy(f"s{n}", seconds=2.5)) for n in range(3)]
    started = time.monotonic()
    run_worker(concurrency=3)
    wait_until(lambda: all((tq.job(i) or {}).get("failed_at") for i in ids), timeout=10)
    assert time.monotonic() - started < 6
    time.sleep(1)  # past the sleep: the interrupted jobs must not carry on
    assert sum(tq.count_runs(f"s{n}", "woke") for n in range(3)) == 0


def test_strict_priority_with_a_bulk_backlog(tq, run_worker):
    tomqueue.configure(priority_map={1: tomqueue.HIGH_PRIORITY, 9: tomqueue.BULK_PRIORITY})
    tomqueue.enqueue_many([Record(f"bulk{n}") for n in range(200)], priority=9)
    high = tomqueue.enqueue_many([Record(f"high{n}") for n in range(5)], priority=1)
    tq.flush_announcements()  # the backlog is in the queues before the worker starts
    run_worker()
    wait_until(lambda: tq.pending_count() == 0, timeout=60)
    order = [r[0] for r in tq.sql("SELECT label FROM test_runs ORDER BY id")]
    assert order[:5] == [f"high{n}" for n in range(5)]
    assert len(order) == 205 and len(high) == 5


def test_unknown_class_fails_once_with_a_clear_error(tq, run_worker):
    job_id = tomqueue.enqueue(Record("x"))
    tq.sql(
        "UPDATE tomqueue_jobs SET handler = %s WHERE id = %s",
        '{"v":1,"class":"myapp.jobs.Gone","state":{}}',
        job_id,
    )
    tomqueue.enqueue(Record("after"))  # its own notification; the edited row gets republished
    run_worker()
    from click.testing import CliRunner

    from tomqueue.cli import main as cli_main

    CliRunner().invoke(cli_main, ["republish"])
    wait_until(lambda: (tq.job(job_id) or {}).get("failed_at") is not None)
    row = tq.job(job_id)
    assert row["attempts"] == 1
    assert "myapp.jobs.Gone" in row["last_error"] and "not registered" in row["last_error"]


def test_forged_handler_naming_a_non_job_class_never_runs(tq, run_worker, tmp_path):
    marker = tmp_path / "pwned"
    job_id = tomqueue.enqueue(Record("x"))
    tq.sql(
        "UPDATE tomqueue_jobs SET handler = %s WHERE id = %s",
        f'{{"v":1,"class":"subprocess.Popen","state":{{"args":["touch","{marker}"]}}}}',
        job_id,
    )
    from click.testing import CliRunner

    from tomqueue.cli import main as cli_main

    CliRunner().invoke(cli_main, ["republish"])
    run_worker()
    wait_until(lambda: (tq.job(job_id) or {}).get("failed_at") is not None)
    assert not marker.exists()
    assert "not registered" in tq.job(job_id)["last_error"]


def test_garbage_messages_are_acked_and_the_worker_carries_on(tq, run_worker):
    tomqueue.enqueue(Record("warmup"))  # declares the topology
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    channel = connection.channel()
    for body in [b"garbage", b"{}", b'{"v":1,"job_id":-4}', b"\x00\xff" * 10]:
        channel.basic_publish("", f"{tq.prefix}.balance.high", body)
    connection.close()
    job_id = tomqueue.enqueue(Record("after garbage"))
    run_worker()
    wait_until(lambda: tq.job(job_id) is None)
    wait_until(lambda: tq.queue_depth(f"{tq.prefix}.balance.high") == 0)


def test_stale_digest_and_deleted_rows_are_dropped(tq, run_worker):
    stale = tomqueue.enqueue(Record("stale"))
    tq.sql("UPDATE tomqueue_jobs SET priority = 7 WHERE id = %s", stale)  # digest changes
    gone = tomqueue.enqueue(Record("gone"))
    tq.sql("DELETE FROM tomqueue_jobs WHERE id = %s", gone)
    marker = tomqueue.enqueue(Record("marker"))
    run_worker()
    wait_until(lambda: tq.job(marker) is None)
    assert tq.count_runs("gone") == 0
    assert tq.count_runs("stale") == 0
    assert tq.job(stale)["locked_by"] is None  # untouched: waiting for the sweep / republish


def test_high_jobs_overtake_a_bulk_backlog_that_is_already_draining(tq, run_worker):
    tomqueue.configure(priority_map={1: tomqueue.HIGH_PRIORITY, 9: tomqueue.BULK_PRIORITY})
    tomqueue.enqueue_many([Record(f"bulk{n}") for n in range(300)], priority=9)
    run_worker()
    wait_until(lambda: tq.scalar("SELECT count(*) FROM test_runs") >= 50, timeout=30)
    for n in range(5):
        tomqueue.enqueue(Record(f"high{n}"), priority=1)
    enqueued_at = tq.scalar("SELECT clock_timestamp()")
    wait_until(lambda: tq.count_runs("high4") == 1, timeout=30)
    last_high = tq.scalar("SELECT max(at) FROM test_runs WHERE label LIKE 'high%%'")
    bulk_between = tq.scalar(
        "SELECT count(*) FROM test_runs WHERE label LIKE 'bulk%%' AND at > %s AND at < %s",
        enqueued_at,
        last_high,
    )
    assert bulk_between <= 2, f"{bulk_between} bulk jobs ran while high jobs waited"


def test_a_busy_worker_acks_every_message_once_with_multiple_acks(tq, run_worker):
    tomqueue.enqueue_many([Record(f"many{n}") for n in range(300)])
    worker = run_worker(concurrency=4)
    wait_until(lambda: tq.pending_count() == 0, timeout=60, message="every row deleted")
    worker.stop()
    wait_until(lambda: not worker.consumer.connected, message="worker stopped")
    runs = tq.sql("SELECT label, count(*) FROM test_runs WHERE event = 'perform' GROUP BY label")
    assert sorted(runs) == sorted((f"many{n}", 1) for n in range(300))
    consumer = worker.consumer
    assert consumer.acks_sent == 300
    assert consumer.ack_frames_sent < consumer.acks_sent, "no multiple ack was sent"
    # nothing unacked: a closed connection's unacked messages would be ready again
    queues = Topology(tq.prefix).all_queues()
    assert [tq.queue_depth(queue) for queue in queues] == [0] * len(queues)
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    try:
        channel = connection.channel()
        redelivered = [channel.basic_get(queue, auto_ack=False)[0] for queue in queues]
    finally:
        connection.close()
    assert redelivered == [None] * len(queues)


def test_a_long_runner_acked_early_lets_the_acks_behind_it_coalesce(tq, run_worker):
    """The long runner holds the channel's lowest tag for 6 s; once its message is acked
    early, the acks of the jobs queued behind it may go as multiple acks again."""
    tomqueue.configure(early_ack_after=timedelta(seconds=0.3))
    worker = run_worker(concurrency=4)
    consumer = worker.consumer
    long_id = tomqueue.enqueue(Slow("long", seconds=6))
    wait_until(lambda: consumer.acks_sent == 1, timeout=10, message="the long runner acked early")
    assert tq.count_runs("long", "start") == 1 and tq.count_runs("long", "end") == 0
    tomqueue.enqueue_many([Record(f"short{n}") for n in range(50)])
    wait_until(lambda: consumer.acks_sent == 51, timeout=30, message="every message acked")
    assert tq.count_runs("long", "end") == 0, "the long runner finished before the shorts"
    assert consumer.ack_frames_sent < consumer.acks_sent, "no multiple ack was sent"
    wait_until(lambda: tq.job(long_id) is None, timeout=30, message="the long runner done")
    worker.stop()
    wait_until(lambda: not worker.consumer.connected, message="worker stopped")
    assert consumer.acks_sent == 51
    assert tq.count_runs("long", "start") == 1
    assert [tq.count_runs(f"short{n}") for n in range(50)] == [1] * 50
    queues = Topology(tq.prefix).all_queues()
    assert [tq.queue_depth(queue) for queue in queues] == [0] * len(queues)


def test_a_busy_worker_groups_its_locks_and_deletes(tq, run_worker):
    tomqueue.enqueue_many([Record(f"g{n}") for n in range(400)])
    tq.flush_announcements()
    worker = run_worker(concurrency=8)
    wait_until(lambda: tq.pending_count() == 0, timeout=60)
    assert tq.scalar("SELECT count(DISTINCT label) FROM test_runs WHERE label LIKE 'g%'") == 400
    assert tq.scalar("SELECT count(*) FROM test_runs WHERE label LIKE 'g%'") == 400
    grouped = worker.runtime.store.worker.batching()
    lock_statements, locked = grouped["lock"]
    delete_statements, deleted = grouped["delete"]
    assert locked >= 400 and deleted == 400
    # several slots' requests shared a statement: fewer statements than jobs
    assert lock_statements < locked or delete_statements < deleted, grouped
