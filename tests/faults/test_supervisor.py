"""tomqueue-worker --processes N: a supervisor restarts a child killed mid-job, recycles
children after --max-jobs, and stops within --shutdown-timeout without losing a job."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

import tomqueue
from tests.conftest import ROOT, stop_process, wait_until
from tests.jobs import Record, Slow

if TYPE_CHECKING:  # imported only for the type: pytest would try to collect a Test* class
    from tests.conftest import TestEnv

pytestmark = pytest.mark.faults


def spawn_supervisor(
    tq: TestEnv, log: Path, env: dict[str, str], *args: str
) -> subprocess.Popen[bytes]:
    """``tomqueue-worker --processes 2 ...`` whose log (its children's too) goes to ``log``."""
    argv = [sys.executable, "-m", "tomqueue.worker", "--app", "tests.jobs", "--processes", "2"]
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, *args], cwd=ROOT, env=env, stderr=out)
    tq.processes.append(proc)  # killed at teardown if a test fails half-way
    return proc


def pids_that_ran(tq: TestEnv, label: str) -> list[int]:
    return [
        r[0]
        for r in tq.sql(
            "SELECT pid FROM test_runs WHERE label = %s AND event = 'start' ORDER BY id", label
        )
    ]


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


def test_shutdown_timeout_kills_a_busy_child_and_its_job_runs_again(tq, fast_env, tmp_path):
    log = tmp_path / "supervisor.log"
    supervisor = spawn_supervisor(tq, log, fast_env, "--shutdown-timeout", "2")
    job_id = tomqueue.enqueue(Slow("long", seconds=8))
    wait_until(lambda: pids_that_ran(tq, "long"), timeout=30, message="job started")
    [busy] = pids_that_ran(tq, "long")

    asked = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0
    took = time.monotonic() - asked
    assert 2 <= took < 6, f"stopped after {took:.1f}s with --shutdown-timeout 2 and an 8 s job"
    assert not psutil.pid_exists(busy), "the busy child outlived its supervisor"
    assert tq.count_runs("long", "end") == 0  # killed mid-job, not finished
    text = log.read_text()
    assert "after the 2s shutdown timeout: killed worker" in text
    assert f"(pid {busy}) with SIGKILL" in text

    # no job lost: the next worker takes it over through the orphan path and finishes it
    tq.spawn("worker", env=fast_env)
    wait_until(lambda: tq.job(job_id) is None, timeout=40, message="job completed after all")
    assert tq.count_runs("long", "end") == 1
    assert pids_that_ran(tq, "long")[1] != busy


def test_a_second_sigterm_kills_the_children_at_once(tq, fast_env, tmp_path):
    log = tmp_path / "supervisor.log"
    supervisor = spawn_supervisor(tq, log, fast_env)  # the default timeout: 30 s
    job_id = tomqueue.enqueue(Slow("stubborn", seconds=60))
    wait_until(lambda: pids_that_ran(tq, "stubborn"), timeout=30, message="job started")
    [busy] = pids_that_ran(tq, "stubborn")

    supervisor.send_signal(signal.SIGTERM)
    wait_until(
        lambda: "worker(s) to finish the jobs" in log.read_text(), message="graceful stop begun"
    )
    asked = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(15) == 128 + signal.SIGTERM
    took = time.monotonic() - asked
    assert took < 3, f"a second SIGTERM took {took:.1f}s"
    assert not psutil.pid_exists(busy)
    assert "received SIGTERM again: killed worker" in log.read_text()
    assert f"(pid {busy})" in log.read_text()
    row = tq.job(job_id)  # still there, locked by a dead lease: the orphan path's to run
    assert row is not None and row["failed_at"] is None


def test_max_jobs_with_processes_recycles_the_children(tq, fast_env, tmp_path):
    log = tmp_path / "supervisor.log"
    supervisor = spawn_supervisor(tq, log, fast_env, "--max-jobs", "3")
    ids = tomqueue.enqueue_many([Record(f"r{n}") for n in range(20)])
    wait_until(lambda: tq.pending_count() == 0, timeout=90, message="20 jobs done")
    runs = tq.sql("SELECT label, pid FROM test_runs")
    assert sorted(label for label, _ in runs) == sorted(f"r{n}" for n in range(20))
    per_pid: dict[int, int] = {}
    for _, pid in runs:
        per_pid[pid] = per_pid.get(pid, 0) + 1
    assert max(per_pid.values()) <= 3, f"a child ran more than --max-jobs: {per_pid}"
    assert len(per_pid) >= 7  # 20 jobs, at most 3 each
    assert log.read_text().count("exited cleanly") >= 5
    assert "died with" not in log.read_text()  # recycling is not counted as a crash
    assert all(tq.job(i) is None for i in ids)
    assert stop_process(supervisor) == 0
