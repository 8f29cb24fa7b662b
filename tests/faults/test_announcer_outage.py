"""enqueue returns before RabbitMQ has the message: the announcements in flight when the
broker restarts, or when the enqueueing process is SIGKILLed, are never lost jobs."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.faults.test_outages import runs_by_label
from tests.jobs import Record

pytestmark = pytest.mark.faults


def test_rabbitmq_restarted_under_a_burst_of_background_announcements(tq, fast_env):
    labels = [f"burst{n}" for n in range(1500)]
    restart = threading.Thread(
        target=subprocess.run,
        args=([ROOT / "bin" / "rabbitmq-restart"],),
        kwargs={"check": True, "timeout": 120},
    )
    tomqueue.enqueue(Record("warmup"))
    for n, label in enumerate(labels):
        tomqueue.enqueue(Record(label))  # returns at the commit, whatever the broker does
        if n == 100:
            restart.start()  # while hundreds of announcements are queued or unconfirmed
    restart.join(150)
    tq.flush_announcements(60)
    tq.spawn("worker", "--concurrency", "4", env=fast_env)
    tq.spawn("deferred", env=fast_env)
    wait_until(
        lambda: len(runs_by_label(tq, "burst")) == len(labels),
        timeout=150,
        message="every burst job ran",
    )
    wait_until(lambda: tq.pending_count() == 0, timeout=30)
    assert set(runs_by_label(tq, "burst").values()) == {1}


def test_a_producer_killed_before_its_announcements_went_out_loses_no_job(tq, fast_env):
    script = (
        "import os, signal, tomqueue\n"
        "from tests.jobs import Record\n"
        "for n in range(300):\n"
        "    tomqueue.enqueue(Record(f'killed{n}'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)  # before the background thread caught up\n"
    )
    producer = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=tq.environ, timeout=120, check=False
    )
    assert producer.returncode == -signal.SIGKILL
    assert tq.pending_count() == 300  # every row committed before enqueue returned
    tq.spawn("worker", "--concurrency", "4", env=fast_env)
    wait_until(
        lambda: len(runs_by_label(tq, "killed")) == 300,
        timeout=90,
        message="the stale sweep announced what the killed producer never sent",
    )
    wait_until(lambda: tq.pending_count() == 0, timeout=30)
    assert set(runs_by_label(tq, "killed").values()) == {1}
