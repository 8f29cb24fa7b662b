"""The real console processes: graceful SIGTERM, no busy polling when idle, bad apps."""

import signal
import subprocess
import sys
import time

import pika
import psutil
import pytest

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.jobs import Record, Slow

pytestmark = pytest.mark.integration


def test_sigterm_finishes_the_job_in_hand_then_exits_0(tq):
    worker = tq.spawn("worker")
    job_id = tomqueue.enqueue(Slow("graceful", seconds=2))
    wait_until(lambda: tq.count_runs("graceful", "start") == 1, timeout=20)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert tq.count_runs("graceful", "end") == 1
    assert tq.job(job_id) is None


def test_idle_worker_and_manager_do_not_busy_poll(tq):
    worker, manager = tq.spawn("worker"), tq.spawn("deferred")
    marker = tomqueue.enqueue(Record("ready"))
    wait_until(lambda: tq.job(marker) is None, timeout=20)
    procs = [psutil.Process(worker.pid), psutil.Process(manager.pid)]
    before = [sum(p.cpu_times()[:2]) for p in procs]
    time.sleep(3)
    used = [sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before, strict=True)]
    assert all(u < 0.3 for u in used), f"CPU seconds used while idle: {used}"
    late = tomqueue.enqueue(Record("after idle"))  # and it still wakes up at once
    wait_until(lambda: tq.job(late) is None, timeout=5)


def test_worker_refuses_an_unimportable_app_with_usage_error(tq):
    result = subprocess.run(
        [sys.executable, "-m", "tomqueue.worker", "--app", "no.such.module"],
        cwd=ROOT,
        env=tq.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "cannot import --app no.such.module" in result.stderr


def test_poison_message_on_the_deferred_queue_is_dropped(tq, run_all):
    run_all()
    tomqueue.enqueue(Record("warm"))
    wait_until(lambda: tq.count_runs("warm") == 1)
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    channel = connection.channel()
    for body in [b"garbage", b'{"v":1}', b"\xff" * 100]:
        channel.basic_publish(f"{tq.prefix}.deferred", "", body)
    connection.close()
    wait_until(lambda: tq.queue_depth(f"{tq.prefix}.deferred") == 0, timeout=10)
    from datetime import UTC, datetime, timedelta

    later = tomqueue.enqueue(Record("later"), run_at=datetime.now(UTC) + timedelta(seconds=1))
    wait_until(lambda: tq.job(later) is None, timeout=10)
