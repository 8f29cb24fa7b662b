"""Fast orphan recovery: a worker SIGKILLed mid-job gets its job run again within 10 s,
a live worker's job is never run twice at once, and poison jobs are failed."""

import signal
import time

import pytest
from click.testing import CliRunner

import tomqueue
from tests.conftest import wait_until
from tests.jobs import CrashesOnLastAttempt, KillsItsWorker, Record, Slow
from tomqueue.cli import main as cli

pytestmark = pytest.mark.faults


def start_times(tq, label):
    return [
        r[0]
        for r in tq.sql(
            "SELECT at FROM test_runs WHERE label = %s AND event = 'start' ORDER BY id", label
        )
    ]


@pytest.mark.parametrize("early_ack", [False, True], ids=["message-unacked", "message-acked"])
def test_sigkilled_worker_job_runs_again_within_10s(tq, fast_env, early_ack):
    env = fast_env | ({"TOMQUEUE_EARLY_ACK_AFTER": "0.2"} if early_ack else {})
    job_id = tomqueue.enqueue(Slow("orphan", seconds=3))
    doomed = tq.spawn("worker", env=env)
    wait_until(lambda: len(start_times(tq, "orphan")) == 1, timeout=20)
    if early_ack:
        time.sleep(0.5)  # the message is acked now: only the sweep can bring the job back
    killed_at = tq.scalar("SELECT clock_timestamp()")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    tq.spawn("worker", env=env)
    wait_until(lambda: len(start_times(tq, "orphan")) == 2, timeout=15, message="job rerun")
    recovery = (start_times(tq, "orphan")[1] - killed_at).total_seconds()
    assert recovery < 10, f"recovered after {recovery:.1f}s"
    wait_until(lambda: tq.job(job_id) is None, timeout=15)
    assert tq.count_runs("orphan", "end") == 1


def test_a_live_workers_job_never_runs_twice_at_once(tq, fast_env):
    job_id = tomqueue.enqueue(Slow("busy", seconds=4))
    tq.spawn("worker", env=fast_env)
    wait_until(lambda: len(start_times(tq, "busy")) == 1, timeout=20)
    tq.spawn("worker", env=fast_env)
    for _ in range(3):  # hammer it with duplicate notifications while it runs
        assert CliRunner().invoke(cli, ["republish"]).exit_code == 0
        time.sleep(0.5)
    wait_until(lambda: tq.job(job_id) is None, timeout=20)
    assert len(start_times(tq, "busy")) == 1


def test_poison_job_is_failed_after_max_crashes_and_others_flow(tq, fast_env):
    env = fast_env | {"TOMQUEUE_MAX_CRASHES": "3"}
    poison = tomqueue.enqueue(KillsItsWorker("poison"))
    others = tomqueue.enqueue_many([Record(f"ok{n}") for n in range(5)])
    deadline = time.monotonic() + 60
    while (tq.job(poison) or {}).get("failed_at") is None and time.monotonic() < deadline:
        worker = tq.spawn("worker", env=env)  # a supervisor would restart it like this
        while worker.poll() is None and (tq.job(poison) or {}).get("failed_at") is None:
            time.sleep(0.1)
        if worker.poll() is None:
            worker.terminate()
            worker.wait()
    row = tq.job(poison)
    assert row["failed_at"] is not None, "poison job never failed"
    assert row["crashes"] == 3 and row["attempts"] == 3
    assert "poison" in row["last_error"]
    assert tq.count_runs("poison") == 3
    assert tq.count_runs("poison", "failure") == 1  # Delayed::Job's failure() hook, once
    tq.spawn("worker", env=env)
    wait_until(lambda: all(tq.job(i) is None for i in others), timeout=20)


def test_a_crash_on_the_last_attempt_fails_the_job_for_good_with_its_failure_hook(tq, fast_env):
    env = fast_env | {"TOMQUEUE_ORPHAN_GRACE": "1"}
    job_id = tomqueue.enqueue(CrashesOnLastAttempt("last"))
    tq.spawn("deferred", env=env)
    doomed = tq.spawn("worker", env=env)
    wait_until(lambda: doomed.poll() is not None, timeout=30, message="killed on attempt 2")
    tq.spawn("worker", env=env)
    row = wait_until(lambda: (tq.job(job_id) or {}).get("failed_at") and tq.job(job_id), 30)
    assert row["attempts"] == 2 and row["crashes"] == 1
    assert "attempts used" in row["last_error"] and "died" in row["last_error"]
    assert tq.count_runs("last") == 2  # never a third run past max_attempts
    wait_until(lambda: tq.count_runs("last", "failure") == 1)
