"""A job blocked in a C call past max_run_time: JobTimeout cannot reach it, so its row
stays locked while it may still run, and the worker exits so that its lease dies with it;
the job then runs again through the orphan path. Never twice at once."""

import pytest

import tomqueue
from tests.conftest import wait_until
from tests.hostile_jobs import BlockedInC

pytestmark = pytest.mark.faults


def test_a_job_stuck_in_a_socket_read_makes_its_worker_exit_and_runs_again_once(tq, fast_env):
    env = fast_env | {"TOMQUEUE_TIMEOUT_GRACE": "1", "TOMQUEUE_ORPHAN_GRACE": "1"}
    job_id = tomqueue.enqueue(BlockedInC("stuck", seconds=60))
    first = tq.spawn("worker", "--app", "tests.hostile_jobs", env=env)
    wait_until(lambda: tq.count_runs("stuck", "start") == 1, timeout=20)
    # past max_run_time (1 s), inside the grace: the first run may still be going on
    wait_until(lambda: first.poll() is not None, timeout=15, message="the stuck worker exits")
    assert first.returncode == 70
    exited_at = tq.scalar("SELECT clock_timestamp()")
    assert tq.job(job_id)["locked_by"] is not None, "unlocked while its thread was running"
    assert tq.count_runs("stuck", "start") == 1, "a second run started beside the first"
    tq.spawn("worker", "--app", "tests.hostile_jobs", env=env)
    wait_until(lambda: tq.job(job_id) is None, timeout=30, message="run again and finished")
    starts = [
        r[0]
        for r in tq.sql(
            "SELECT at FROM test_runs WHERE label = 'stuck' AND event = 'start' ORDER BY id"
        )
    ]
    assert len(starts) == 2 and starts[1] > exited_at
    assert tq.count_runs("stuck", "unblocked") == 0  # the first run died with its process
    assert tq.count_runs("stuck", "end") == 1
