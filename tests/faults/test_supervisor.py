"""tomqueue-worker --processes N: a supervisor restarts a child killed mid-job."""

import signal

import psutil
import pytest

import tomqueue
from tests.conftest import stop_process, wait_until
from tests.jobs import Record, Slow

pytestmark = pytest.mark.faults


def test_supervisor_restarts_a_killed_child_and_stops_cleanly(tq, fast_env):
    supervisor = tq.spawn("worker", "--processes", "2", env=fast_env)
    parent = psutil.Process(supervisor.pid)
    wait_until(lambda: len(parent.children()) == 2, timeout=20)
    job_id = tomqueue.enqueue(Slow("sup", seconds=2))
    wait_until(lambda: tq.count_runs("sup", "start") == 1, timeout=20)
    pid = tq.scalar("SELECT pid FROM test_runs WHERE label = 'sup'")
    psutil.Process(pid).send_signal(signal.SIGKILL)
    wait_until(
        lambda: len(parent.children()) == 2 and pid not in {c.pid for c in parent.children()},
        timeout=20,
        message="child restarted",
    )
    wait_until(lambda: tq.job(job_id) is None, timeout=20, message="job recovered")
    after = tomqueue.enqueue(Record("after"))
    wait_until(lambda: tq.job(after) is None, timeout=20)
    children = parent.children()
    assert stop_process(supervisor) == 0
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
