"""SIGKILL between each pair of steps; the job must run, and twice only where designed.

| window                                   | runs | why                                        |
|------------------------------------------|------|--------------------------------------------|
| row committed / message published        | 1    | the sweep republishes the unannounced row  |
| message received / row locked            | 1    | RabbitMQ redelivers the unacked message    |
| job finished / row deleted               | 2    | at-least-once: the run's outcome was lost  |
| row deleted / message acked              | 1    | the redelivery finds no row and is dropped |
| failure recorded / retry published       | 2    | 1 failed + 1 successful attempt: the       |
|                                          |      | manager finds the retry in the database    |
"""

import signal
import subprocess
import sys

import pytest

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.jobs import FlakyUntil, Record

pytestmark = pytest.mark.faults


def kill_at_pause(tq, proc, point):
    wait_until(lambda: tq.count_runs("pause", point) >= 1, timeout=20, message=f"pause at {point}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def paused_worker(tq, env, point):
    return tq.spawn(
        "worker",
        "--app",
        "tests.jobs",
        "--app",
        "tests.fault_app",
        env=env | {"TQ_PAUSE_AT": point},
    )


def test_between_row_commit_and_publish(tq, fast_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_enqueue", "w-commit"],
        cwd=ROOT,
        env=fast_env,
        stdout=subprocess.PIPE,
    )
    tq.processes.append(proc)
    kill_at_pause(tq, proc, "committed_before_publish")
    assert tq.pending_count() == 1
    tq.spawn("worker", env=fast_env)
    wait_until(lambda: tq.pending_count() == 0, timeout=20, message="sweep republished it")
    assert tq.count_runs("w-commit") == 1


def test_between_receive_and_lock(tq, fast_env):
    job_id = tomqueue.enqueue(Record("w-receive"))
    kill_at_pause(tq, paused_worker(tq, fast_env, "received_before_lock"), "received_before_lock")
    tq.spawn("worker", env=fast_env)
    wait_until(lambda: tq.job(job_id) is None, timeout=20)
    assert tq.count_runs("w-receive") == 1


def test_between_finish_and_delete_runs_twice_by_design(tq, fast_env):
    job_id = tomqueue.enqueue(Record("w-finish"))
    kill_at_pause(
        tq, paused_worker(tq, fast_env, "finished_before_delete"), "finished_before_delete"
    )
    assert tq.count_runs("w-finish") == 1 and tq.job(job_id)["locked_by"] is not None
    tq.spawn("worker", env=fast_env)
    wait_until(lambda: tq.job(job_id) is None, timeout=20)
    assert tq.count_runs("w-finish") == 2


def test_between_delete_and_ack(tq, fast_env):
    job_id = tomqueue.enqueue(Record("w-ack"))
    kill_at_pause(tq, paused_worker(tq, fast_env, "deleted_before_ack"), "deleted_before_ack")
    assert tq.job(job_id) is None
    tq.spawn("worker", env=fast_env)
    marker = tomqueue.enqueue(Record("marker"))
    wait_until(lambda: tq.job(marker) is None, timeout=20)
    assert tq.count_runs("w-ack") == 1


def test_between_failure_recorded_and_retry_published(tq, fast_env):
    job_id = tomqueue.enqueue(FlakyUntil("w-retry", succeed_on=2))
    point = "failure_recorded_before_wake"
    kill_at_pause(tq, paused_worker(tq, fast_env, point), point)
    row = tq.job(job_id)
    assert row["attempts"] == 1 and row["released_at"] is None and row["locked_by"] is None
    tq.spawn("worker", env=fast_env)
    tq.spawn("deferred", env=fast_env)
    wait_until(lambda: tq.job(job_id) is None, timeout=20)
    assert tq.count_runs("w-retry") == 2
