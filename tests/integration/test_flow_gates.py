"""Concurrency limits and serial keys on the real servers, with several worker processes:
the limit never exceeded (measured from the jobs' own start and end records), the next job
starting promptly when a slot frees, a serial key's 50 jobs run strictly in order by a
fleet, a failing job holding its key through its retries, and a failed-for-good job
holding it until a person deletes it."""

import json
from datetime import datetime

import pytest

import tomqueue
from tests.conftest import stop_process, wait_until
from tests.jobs import InOrder, Limited, Record
from tomqueue.gates import serial_gate

pytestmark = pytest.mark.integration


def intervals(tq, label: str) -> dict[str, list[datetime]]:
    """tag -> [start, end] of each finished run of ``label``."""
    spans: dict[str, list[datetime]] = {}
    for event, tag, at in tq.sql(
        "SELECT event, detail, at FROM test_runs WHERE label = %s AND event IN "
        "('start', 'end') ORDER BY id",
        label,
    ):
        spans.setdefault(tag, []).append(at)
    return spans


def most_at_once(spans: dict[str, list[datetime]]) -> int:
    """The most runs in progress at one moment (an end before a start at the same time)."""
    edges = sorted(
        [(span[0], 1) for span in spans.values()] + [(span[1], -1) for span in spans.values()],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_a_concurrency_limit_of_two_holds_across_four_workers_of_four_slots(tq):
    workers = [tq.spawn("worker", "--concurrency", "4") for _ in range(4)]
    ids = tomqueue.enqueue_many([Limited("lim", f"j{n}", seconds=0.25) for n in range(24)])
    tomqueue.enqueue_many([Record(f"free{n}") for n in range(20)])  # never held back
    wait_until(lambda: tq.pending_count() == 0, timeout=60, message="all jobs done")
    spans = intervals(tq, "lim")
    assert sorted(spans) == sorted(f"j{n}" for n in range(24))
    assert all(len(span) == 2 for span in spans.values()), "a limited job ran twice"
    assert most_at_once(spans) == 2, "the limit was exceeded, or never reached"
    # the next job starts promptly when a slot frees: while jobs waited, each end was
    # followed by a start within a second
    starts = sorted(span[0] for span in spans.values())
    ends = sorted(span[1] for span in spans.values())
    for end in ends[:-2]:
        following = [start for start in starts if start >= end]
        assert following and (following[0] - end).total_seconds() < 1.0
    # waiting counted no attempts, and no job was failed
    assert tq.scalar("SELECT count(*) FROM tomqueue_jobs") == 0
    assert (
        len(ids) == 24
        and tq.scalar("SELECT count(*) FROM test_runs WHERE label LIKE 'free%'") == 20
    )
    for worker in workers:
        assert stop_process(worker) == 0


def test_parked_jobs_wait_without_attempts_and_show_where_they_wait(tq):
    worker = tq.spawn("worker", "--concurrency", "4")
    # (held long enough that `tomqueue show`, a process of its own, sees one still parked
    # on a loaded machine)
    ids = tomqueue.enqueue_many([Limited("hold", f"h{n}", seconds=4.0) for n in range(4)])
    wait_until(
        lambda: tq.scalar("SELECT count(*) FROM tomqueue_jobs WHERE parked_on IS NOT NULL") == 2
    )
    parked = tq.sql(
        "SELECT attempts, parked_on, locked_by FROM tomqueue_jobs WHERE parked_on IS NOT NULL"
    )
    assert all(attempts == 0 and locked_by is None for attempts, _, locked_by in parked)
    assert {gate for _, gate, _ in parked} == {"limit:tests.jobs.Limited"}
    [(one,)] = tq.sql("SELECT id FROM tomqueue_jobs WHERE parked_on IS NOT NULL LIMIT 1")
    shown = json.loads(tq.cli("show", str(one), "--json").stdout)
    assert shown["parked_on"] == "limit:tests.jobs.Limited" and shown["state"] == "queued"
    wait_until(lambda: tq.pending_count() == 0, timeout=20)
    assert most_at_once(intervals(tq, "hold")) == 2 and len(ids) == 4
    assert stop_process(worker) == 0


def run_order(tq, key: str) -> list[int]:
    return [
        int(number)
        for (number,) in tq.sql(
            "SELECT detail FROM test_runs WHERE label = %s AND event = 'end' ORDER BY id", key
        )
    ]


def test_a_serial_key_runs_fifty_jobs_strictly_in_order_on_a_fleet(tq):
    workers = [tq.spawn("worker", "--concurrency", "4") for _ in range(3)]
    tomqueue.enqueue_many([InOrder("acct-1", n) for n in range(25)])
    for n in range(25, 50):  # one enqueue each too: order is enqueue order across calls
        tomqueue.enqueue(InOrder("acct-1", n))
    others = tomqueue.enqueue_many([InOrder(f"other-{n}", 0) for n in range(10)])
    wait_until(lambda: tq.pending_count() == 0, timeout=60, message="all jobs done")
    assert run_order(tq, "acct-1") == list(range(50))
    assert most_at_once(intervals(tq, "acct-1")) == 1
    assert len(others) == 10 and all(run_order(tq, f"other-{n}") == [0] for n in range(10))
    for worker in workers:
        assert stop_process(worker) == 0


def test_a_failing_job_holds_its_key_through_its_retries(tq):
    worker = tq.spawn("worker", "--concurrency", "4")
    tomqueue.enqueue(InOrder("acct-2", 0, fail_times=2))  # fails twice, then succeeds
    tomqueue.enqueue_many([InOrder("acct-2", n) for n in range(1, 6)])
    free = tomqueue.enqueue(InOrder("acct-3", 0))  # another key is never held back
    wait_until(lambda: tq.pending_count() == 0, timeout=30)
    assert run_order(tq, "acct-2") == [0, 1, 2, 3, 4, 5]
    events = tq.sql("SELECT event, detail FROM test_runs WHERE label = 'acct-2' ORDER BY id")
    first_success = events.index(("end", "0"))
    assert [e for e in events[:first_success] if e[1] != "0"] == [], "ran before its turn"
    assert events.count(("fail", "0")) == 2
    assert run_order(tq, "acct-3") == [0] and tq.job(free) is None
    assert stop_process(worker) == 0


def test_a_job_failed_for_good_holds_its_key_until_it_is_deleted(tq):
    worker = tq.spawn("worker", "--concurrency", "4")
    head = tomqueue.enqueue(InOrder("acct-4", 0, fail_times=99))  # max_attempts 3
    tomqueue.enqueue_many([InOrder("acct-4", n) for n in range(1, 4)])
    unkeyed = tomqueue.enqueue(Record("unkeyed"))
    wait_until(lambda: (tq.job(head) or {}).get("failed_at") is not None, timeout=30)
    wait_until(lambda: tq.job(unkeyed) is None, timeout=10)
    # its key's jobs wait, parked, however long; nothing else is held back
    wait_until(
        lambda: (
            tq.scalar("SELECT count(*) FROM tomqueue_jobs WHERE parked_on = 'serial:acct-4'") == 3
        ),
        timeout=10,
    )
    tq.scalar("SELECT pg_sleep(1.5)")
    assert run_order(tq, "acct-4") == []
    # a person deletes the failed head: the next job runs, then the rest in order
    result = tq.cli("delete", str(head))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: tq.pending_count() == 0, timeout=15, message="the key moves on")
    assert run_order(tq, "acct-4") == [1, 2, 3]
    assert stop_process(worker) == 0


def test_a_retried_failed_head_runs_first_then_the_rest(tq):
    worker = tq.spawn("worker", "--concurrency", "2")
    head = tomqueue.enqueue(InOrder("acct-5", 0, fail_times=3))  # fails all 3 attempts
    tomqueue.enqueue_many([InOrder("acct-5", n) for n in range(1, 3)])
    wait_until(lambda: (tq.job(head) or {}).get("failed_at") is not None, timeout=30)
    result = tq.cli("retry", str(head))  # its 4th try succeeds
    assert result.returncode == 0, result.stderr
    wait_until(lambda: tq.pending_count() == 0, timeout=15)
    assert run_order(tq, "acct-5") == [0, 1, 2]
    assert stop_process(worker) == 0


def test_a_next_job_woken_for_its_waker_is_announced_by_a_sweep_if_the_waker_dies(tq):
    """What a waker that died between waking a serial key's next job and running it
    leaves: the row unparked and unannounced. A worker's sweep announces it."""
    first, second = tomqueue.enqueue_many([InOrder("acct-6", 0), InOrder("acct-6", 1)])
    tq.sql("DELETE FROM tomqueue_jobs WHERE id = %s", first)
    tq.sql(
        "UPDATE tomqueue_jobs SET parked_on = 'serial:acct-6', released_at = now() WHERE id = %s",
        second,
    )
    [woken] = tq.app.store.gates.wake(serial_gate("acct-6"), announce=False)
    assert woken.id == second and tq.job(second)["released_at"] is None
    worker = tq.spawn("worker", env=tq.environ | {"TOMQUEUE_SWEEP_INTERVAL": "0.5"})
    wait_until(lambda: tq.job(second) is None, timeout=20, message="the sweep announced it")
    assert run_order(tq, "acct-6") == [1]
    assert stop_process(worker) == 0
