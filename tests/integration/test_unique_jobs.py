"""Unique jobs on the real servers: 20 processes racing for one key, sessions, and the key
through a job's life (waiting, running, waiting for a retry, failed for good, retried)."""

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.jobs import UniqueRefresh
from tomqueue.admin import Admin
from tomqueue.default_app import default_app
from tomqueue.filters import Filter, State
from tomqueue.job import stored_unique_key

pytestmark = pytest.mark.integration


def test_twenty_processes_enqueueing_one_key_at_once_write_one_row(tq):
    start_at = time.time() + 4.0  # every process connected and waiting by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.unique_enqueuer",
                str(start_at),
                "7",
                "session" if n % 2 else "plain",
            ],
            cwd=ROOT,
            env=tq.environ,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(20)
    ]
    ids = set()
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        ids.add(int(out.strip()))
    rows = tq.sql("SELECT id, unique_key FROM tomqueue_jobs")
    assert len(rows) == 1, rows
    assert ids == {rows[0][0]}, "every process got the one row's id"
    assert rows[0][1] == stored_unique_key(UniqueRefresh(7))


def test_a_second_session_waits_for_the_first_and_gets_its_id_or_writes_its_own(tq):
    engine = default_app().engine
    results: dict[str, int] = {}
    first_wrote = threading.Event()

    def second() -> None:
        first_wrote.wait()
        with Session(engine) as session, session.begin():
            results["second"] = tomqueue.enqueue(UniqueRefresh(1), session=session)

    thread = threading.Thread(target=second)
    thread.start()
    with Session(engine) as session, session.begin():
        results["first"] = tomqueue.enqueue(UniqueRefresh(1), session=session)
        first_wrote.set()
        time.sleep(0.5)  # the second's insert waits on this uncommitted row
        assert "second" not in results
    thread.join(10)
    assert results["second"] == results["first"]
    # a rolled-back twin is none: the next enqueue writes its own
    with Session(engine) as session:
        session.begin()
        rolled_back = tomqueue.enqueue(UniqueRefresh(2), session=session)
        session.rollback()
    fresh = tomqueue.enqueue(UniqueRefresh(2))
    assert fresh != rolled_back and tq.job(fresh) is not None
    assert tq.scalar("SELECT count(*) FROM tomqueue_jobs") == 2


def test_the_key_through_a_jobs_life(tq, run_worker):
    # waiting (queued, no worker yet): a twin returns its id
    first = tomqueue.enqueue(UniqueRefresh(5, seconds=3, fail=True))
    assert tomqueue.enqueue(UniqueRefresh(5)) == first
    assert tomqueue.enqueue_many([UniqueRefresh(5), UniqueRefresh(6)])[0] == first
    # running: no twin, so a new job is written (the running one may have missed new work)
    run_worker()
    wait_until(lambda: tq.count_runs("refresh5", "start") == 1, message="running")
    # (the twin takes a second itself, so that it is still in the table when it is read:
    # the worker starts it the moment the first one fails)
    while_running = tomqueue.enqueue(UniqueRefresh(5, seconds=1))
    assert while_running != first
    # the running one fails and waits an hour for its retry: the one written meanwhile
    # keeps the key, the retry goes on without it, and both stay
    wait_until(lambda: (tq.job(first) or {}).get("attempts") == 1, timeout=20)
    assert tq.job(first)["unique_key"] is None
    assert tq.job(while_running)["unique_key"] == stored_unique_key(UniqueRefresh(5))
    wait_until(lambda: tq.job(while_running) is None, timeout=20, message="the twin ran")
    assert tq.count_runs("refresh5") == 1
    # waiting for its retry, with its key: a twin returns its id
    waiting_retry = tomqueue.enqueue(UniqueRefresh(8, fail=True))
    wait_until(lambda: (tq.job(waiting_retry) or {}).get("attempts") == 1, timeout=20)
    assert tq.job(waiting_retry)["unique_key"] is not None
    assert tomqueue.enqueue(UniqueRefresh(8)) == waiting_retry


def test_a_failed_job_is_no_twin_and_retrying_it_beside_a_waiting_twin_runs_both(tq):
    admin = Admin(default_app())
    failed = tomqueue.enqueue(UniqueRefresh(9, fail=True))
    tq.sql("UPDATE tomqueue_jobs SET failed_at = now(), attempts = 25 WHERE id = %s", failed)
    waiting = tomqueue.enqueue(UniqueRefresh(9), run_at=_in(3600))
    assert waiting != failed
    assert admin.retry(failed).done
    assert tq.job(failed)["unique_key"] is None and tq.job(failed)["failed_at"] is None
    assert tq.job(waiting)["unique_key"] == stored_unique_key(UniqueRefresh(9))
    two_failed = tomqueue.enqueue_many([UniqueRefresh(10, fail=True)])
    tq.sql("UPDATE tomqueue_jobs SET failed_at = now() WHERE id = %s", two_failed[0])
    other = tomqueue.enqueue(UniqueRefresh(10, fail=True))
    tq.sql("UPDATE tomqueue_jobs SET failed_at = now() WHERE id = %s", other)
    # retrying both in one batch: the lower id keeps the key, the other goes without
    report = admin.retry_all(Filter(state=State.FAILED))
    assert report.done == 2
    keys = dict(
        tq.sql(
            "SELECT id, unique_key FROM tomqueue_jobs WHERE id IN (%s, %s)", two_failed[0], other
        )
    )
    assert keys[two_failed[0]] is not None and keys[other] is None


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
