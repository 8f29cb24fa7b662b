"""The deferred manager on real servers: on time, never early, far-future jobs stay put."""

import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

import tomqueue
from tests.conftest import stop_process, wait_until
from tests.jobs import FlakyUntil, Record
from tomqueue.cli import main as cli

pytestmark = pytest.mark.integration

WORK_QUEUES = ("high", "normal", "low", "bulk")


def start_times(tq, prefix):
    """label -> DB clock time its perform started, for labels starting with prefix."""
    return dict(tq.sql("SELECT label, at FROM test_runs WHERE label LIKE %s", prefix + "%"))


def test_released_on_time_and_never_early(tq, run_all):
    run_all()
    base = datetime.now(UTC)
    due = {f"t{n}": base + timedelta(seconds=1.5 + n * 0.1) for n in range(20)}
    for label, run_at in due.items():
        tomqueue.enqueue(Record(label), run_at=run_at)
    wait_until(lambda: len(start_times(tq, "t")) == 20, timeout=20)
    started = start_times(tq, "t")
    lateness = sorted((started[label] - due[label]).total_seconds() for label in due)
    assert lateness[0] >= 0, f"a job started {-lateness[0]:.3f}s early"
    assert lateness[-1] < 1.0, f"lateness {lateness}"


def test_far_future_job_waits_in_the_database_not_in_the_broker(tq, run_all):
    job_id = tomqueue.enqueue(Record("far"), run_at=datetime.now(UTC) + timedelta(hours=6))
    run_all()
    marker = tomqueue.enqueue(Record("marker"))
    wait_until(lambda: tq.job(marker) is None)
    time.sleep(2)  # give a bounce the chance to show itself
    row = tq.job(job_id)
    assert row["released_at"] is None and row["locked_by"] is None and row["attempts"] == 0
    assert tq.count_runs("far") == 0
    assert all(tq.queue_depth(f"{tq.prefix}.balance.{q}") == 0 for q in WORK_QUEUES)
    assert tq.queue_depth(f"{tq.prefix}.deferred") == 0


def test_retry_backoff_goes_through_the_manager(tq, run_worker, run_deferred):
    job_id = tomqueue.enqueue(FlakyUntil("flaky", succeed_on=2))
    run_worker()
    wait_until(lambda: tq.count_runs("flaky") == 1)
    wait_until(lambda: (tq.job(job_id) or {}).get("attempts") == 1)
    time.sleep(1.0)  # due after 200 ms, but no manager runs: nobody releases it
    assert tq.count_runs("flaky") == 1 and tq.job(job_id)["released_at"] is None
    run_deferred()
    wait_until(lambda: tq.job(job_id) is None, message="retry released by the manager")
    assert tq.count_runs("flaky") == 2


def test_rescheduled_deleted_and_retried_while_waiting(tq, run_all):
    soon = datetime.now(UTC) + timedelta(seconds=2)
    moved = tomqueue.enqueue(Record("moved"), run_at=soon)
    deleted = tomqueue.enqueue(Record("deleted"), run_at=soon)
    retried = tomqueue.enqueue(Record("retried"), run_at=datetime.now(UTC) + timedelta(hours=1))
    run_all()
    time.sleep(1.2)  # the manager now holds "moved" and "deleted" in memory
    later = datetime.now(UTC) + timedelta(seconds=3)
    tq.sql("UPDATE tomqueue_jobs SET run_at = %s WHERE id = %s", later, moved)
    tq.sql("DELETE FROM tomqueue_jobs WHERE id = %s", deleted)
    assert CliRunner().invoke(cli, ["retry", str(retried)]).exit_code == 0
    wait_until(lambda: tq.count_runs("retried") == 1, message="retried job ran now")
    wait_until(lambda: tq.count_runs("moved") == 1, timeout=10)
    started = tq.scalar("SELECT at FROM test_runs WHERE label = 'moved'")
    assert started >= later, "released at its old time"
    assert (started - later).total_seconds() < 1.0
    assert tq.count_runs("deleted") == 0


def test_sigkill_the_manager_and_restart_it(tq, run_worker):
    run_worker(concurrency=4)
    manager = tq.spawn("deferred")
    base = datetime.now(UTC)
    due = {f"k{n}": base + timedelta(seconds=2 + n * 0.05) for n in range(60)}
    tomqueue.enqueue(Record("warm-up"))
    wait_until(lambda: tq.count_runs("warm-up") == 1)
    for label, run_at in due.items():
        tomqueue.enqueue(Record(label), run_at=run_at)
    time.sleep(1.0)  # it now holds them all in memory
    manager.send_signal(signal.SIGKILL)
    manager.wait()
    time.sleep(2.0)
    tq.spawn("deferred")
    wait_until(lambda: len(start_times(tq, "k")) == 60, timeout=20)
    started = start_times(tq, "k")
    assert all(started[label] >= due[label] for label in due), "a job ran early"
    assert tq.pending_count() == 0


def test_two_managers_release_each_job_once(tq, run_worker):
    first, second = tq.spawn("deferred"), tq.spawn("deferred")
    run_worker(concurrency=2)
    base = datetime.now(UTC)
    due = {f"two{n}": base + timedelta(seconds=1 + n * 0.05) for n in range(40)}
    for label, run_at in due.items():
        tomqueue.enqueue(Record(label), run_at=run_at)
    wait_until(lambda: len(start_times(tq, "two")) == 40, timeout=20)
    runs = tq.sql("SELECT label, count(*) FROM test_runs WHERE label LIKE 'two%%' GROUP BY label")
    assert all(count == 1 for _, count in runs)
    assert stop_process(first) == 0 and stop_process(second) == 0
