"""The grouped lock and delete (one statement for several slots' jobs) under SIGKILL:
nothing lost, no job run twice at once, and a rerun only for a job that had finished but
whose delete had not committed (at most one per slot per kill)."""

from __future__ import annotations

import signal

import pytest

import tomqueue
from tests.conftest import wait_until
from tests.jobs import StartEnd

pytestmark = pytest.mark.faults

JOBS = 1200
CONCURRENCY = 8
KILLS = 3


def test_sigkill_mid_batch_loses_nothing_and_never_runs_a_job_twice_at_once(tq, fast_env):
    tomqueue.enqueue_many([StartEnd(f"b{n}", seconds=0.002) for n in range(JOBS)])
    tq.flush_announcements()
    kills: dict[int, float] = {}  # pid -> database time of its SIGKILL
    for _ in range(KILLS):
        before = tq.scalar("SELECT count(*) FROM test_runs WHERE event = 'end'")
        worker = tq.spawn("worker", "--concurrency", str(CONCURRENCY), env=fast_env)
        wait_until(
            lambda before=before: (
                tq.scalar("SELECT count(*) FROM test_runs WHERE event = 'end'") >= before + 150
            ),
            timeout=60,
            message="the worker is draining at full speed",
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills[worker.pid] = tq.scalar("SELECT clock_timestamp()")
    tq.spawn("worker", "--concurrency", str(CONCURRENCY), env=fast_env)
    wait_until(lambda: tq.pending_count() == 0, timeout=120, message="every job finished")

    events = tq.sql(
        "SELECT label, event, pid, at FROM test_runs WHERE label LIKE 'b%' ORDER BY at, id"
    )
    ended = {label for label, event, _, _ in events if event == "end"}
    assert len(ended) == JOBS, "every job ran to its end"

    open_runs: dict[str, set[int]] = {}
    for label, event, pid, at in events:
        running = open_runs.setdefault(label, set())
        if event == "start":
            # a run in a process killed before this start is over, whatever it recorded
            live = {p for p in running if p not in kills or kills[p] > at}
            assert not live, f"{label} started in {pid} while running in {live}"
            running.add(pid)
        else:
            running.discard(pid)

    starts: dict[str, int] = {}
    for label, event, _, _ in events:
        if event == "start":
            starts[label] = starts.get(label, 0) + 1
    reruns = sum(count - 1 for count in starts.values())
    assert reruns <= KILLS * CONCURRENCY, f"{reruns} reruns for {KILLS} kills"
