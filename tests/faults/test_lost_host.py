"""A lost host: a worker or deferred leader whose PostgreSQL traffic stops dead (power loss,
partition), played by a proxy that stops forwarding while keeping every socket open.

TCP notices nothing then (the proxy's kernel still acknowledges), so these tests prove the
application-level bounds: the server ends the silent lease session after lease_timeout
(idle_session_timeout), and the holder, whose check goes unanswered, steps down within a
third of that. Measured times are printed (run with -s) for docs/reliability.md.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

import tomqueue
from tests.conftest import ROOT, InThreads, wait_until
from tests.jobs import Record, Slow
from tests.tcp_proxy import TcpProxy
from tomqueue.app import App
from tomqueue.database import (
    ADVISORY_NAMESPACE,
    LeaseTimings,
    lease_engine,
    open_lease_session,
    psycopg_connection,
)
from tomqueue.default_app import default_app
from tomqueue.deferred.leadership import Leadership, leader_key
from tomqueue.deferred.manager import DeferredManager
from tomqueue.worker.lease import WorkerLease

pytestmark = pytest.mark.faults

LEASE_TIMEOUT = 3.0
MARGIN = 2.0  # for a loaded 2-core machine


@pytest.fixture
def proxy():
    with TcpProxy() as relay:
        yield relay


def lock_holders(tq, key):
    """Backend pids holding tomqueue's advisory lock ``key`` now, seen directly."""
    return [
        r[0]
        for r in tq.sql(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 2",
            ADVISORY_NAMESPACE,
            key,
        )
    ]


def starts(tq, label):
    return tq.sql(
        "SELECT at, pid FROM test_runs WHERE label = %s AND event = 'start' ORDER BY id", label
    )


def test_a_lease_session_carries_its_bounds_on_both_ends(tq):
    timings = LeaseTimings(LEASE_TIMEOUT)
    engine = lease_engine(tq.database_url, timings)
    try:
        with open_lease_session(engine, timings) as conn:
            server = {
                name: conn.exec_driver_sql(f"SHOW {name}").scalar_one()
                for name in (
                    "idle_session_timeout",
                    "tcp_keepalives_idle",
                    "tcp_keepalives_interval",
                    "tcp_keepalives_count",
                    "tcp_user_timeout",
                )
            }
            client = psycopg_connection(conn).info.get_parameters()
    finally:
        engine.dispose()
    # the keepalive settings show what the server's socket really has, without units
    assert server == {
        "idle_session_timeout": "3s",
        "tcp_keepalives_idle": "1",
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "3000",
    }
    assert client["keepalives"] == "1" and client["tcp_user_timeout"] == "3000"
    assert client["keepalives_idle"] == "1" and client["connect_timeout"] == "2"


def test_a_frozen_lease_is_given_up_by_its_holder_then_ended_by_the_server(tq, proxy):
    lease = WorkerLease(proxy.url_for(tq.database_url), timedelta(seconds=LEASE_TIMEOUT))
    lease.acquire()
    try:
        assert lease.held and lease.wait_held(0)
        (old_backend,) = lock_holders(tq, lease.key)
        proxy.freeze()
        frozen = time.monotonic()
        wait_until(lambda: not lease.held, timeout=LEASE_TIMEOUT, message="held turns false")
        noticed = time.monotonic() - frozen
        assert not lease.wait_held(0.1)
        wait_until(lambda: not lock_holders(tq, lease.key), timeout=LEASE_TIMEOUT + MARGIN)
        ended = time.monotonic() - frozen
        print(f"\nlease: holder noticed after {noticed:.2f}s, server ended it after {ended:.2f}s")
        t = lease.timings
        assert noticed <= t.check_interval + t.check_deadline + MARGIN / 2
        assert noticed < ended, "the holder must know before anyone can take its lock"
        proxy.thaw()  # the partition heals: the same key is taken again
        assert lease.wait_held(LEASE_TIMEOUT + MARGIN)
        (new_backend,) = lock_holders(tq, lease.key)
        assert new_backend != old_backend
    finally:
        lease.release()
    wait_until(lambda: not lock_holders(tq, lease.key), timeout=5)


def test_a_partitioned_workers_job_is_run_again_elsewhere(tq, fast_env, proxy, tmp_path):
    env = fast_env | {"TOMQUEUE_LEASE_TIMEOUT": str(LEASE_TIMEOUT)}
    job_id = tomqueue.enqueue(Slow("cut-off", seconds=3))
    log_path = tmp_path / "frozen-worker.log"
    with log_path.open("wb") as log_file:
        frozen_worker = subprocess.Popen(
            [sys.executable, "-m", "tomqueue.worker", "--app", "tests.jobs"],
            cwd=ROOT,
            env=env | {"TOMQUEUE_DATABASE_URL": proxy.url_for(tq.database_url)},
            stderr=log_file,
        )
    tq.processes.append(frozen_worker)
    wait_until(lambda: len(starts(tq, "cut-off")) == 1, timeout=20, message="first start")
    tq.spawn("worker", env=env)
    proxy.freeze()
    frozen_at = tq.scalar("SELECT clock_timestamp()")
    wait_until(lambda: len(starts(tq, "cut-off")) == 2, timeout=30, message="job run again")
    (_, first_pid), (restarted_at, second_pid) = starts(tq, "cut-off")
    recovery = (restarted_at - frozen_at).total_seconds()
    grace, sweep = 4.0, float(env["TOMQUEUE_SWEEP_INTERVAL"])
    print(f"\nworker partitioned: its job started again elsewhere after {recovery:.2f}s")
    assert first_pid == frozen_worker.pid and second_pid != first_pid
    assert recovery <= LEASE_TIMEOUT + grace + 2 * sweep + MARGIN
    wait_until(lambda: tq.job(job_id) is None, timeout=20, message="rerun finished")
    wait_until(
        lambda: b"worker lease lost" in log_path.read_bytes(),
        timeout=5,
        message="the frozen worker logs that it lost its lease",
    )
    assert frozen_worker.poll() is None, "the partitioned worker must wait, not exit"
    assert log_path.read_bytes().count(b"worker lease taken:") == 1  # started once
    proxy.close()  # the partition never heals: the first run can never write its end
    assert tq.count_runs("cut-off", "end") == 1
    assert tq.pending_count() == 0


def test_a_partitioned_deferred_leader_steps_down_before_a_standby_takes_over(
    tq, proxy, run_worker, caplog
):
    caplog.set_level(logging.WARNING, logger="tomqueue.deferred.leadership")
    base = default_app().settings.replace(lease_timeout=timedelta(seconds=LEASE_TIMEOUT))
    # the leader polls and sweeps once a minute: only its leadership checks keep its
    # session from being ended as idle, whatever the poll interval
    leader_settings = base.replace(
        database_url=proxy.url_for(tq.database_url),
        deferred_poll_interval=timedelta(seconds=60),
        sweep_interval=timedelta(seconds=60),
    )
    managers = InThreads()
    try:
        leader = managers.start(DeferredManager(App(leader_settings)))
        wait_until(lambda: leader.leadership.held, message="first manager leads")
        standby = managers.start(DeferredManager(App(base)))
        (backend,) = lock_holders(tq, leader_key(base.prefix))
        # for longer than lease_timeout the same session leads: never ended as idle
        until = time.monotonic() + LEASE_TIMEOUT + 0.5
        while time.monotonic() < until:
            assert leader.leadership.held and not standby.leadership.held
            assert lock_holders(tq, leader_key(base.prefix)) == [backend]
            time.sleep(0.1)
        run_worker()

        proxy.freeze()
        frozen = time.monotonic()
        run_at = datetime.now(UTC) + timedelta(seconds=LEASE_TIMEOUT + 3)
        tomqueue.enqueue(Record("later"), run_at=run_at)
        wait_until(lambda: not leader.leadership.held, timeout=LEASE_TIMEOUT, message="step down")
        stepped_down = time.monotonic() - frozen
        assert not standby.leadership.held, "two leaders at once"
        wait_until(lambda: standby.leadership.held, timeout=LEASE_TIMEOUT + MARGIN)
        took_over = time.monotonic() - frozen
        print(
            f"\ndeferred leader partitioned: stepped down after {stepped_down:.2f}s, "
            f"standby leads after {took_over:.2f}s"
        )
        assert stepped_down <= LEASE_TIMEOUT / 3 + 1.0
        assert took_over <= LEASE_TIMEOUT + 0.5 + MARGIN  # + the standby's retry interval
        assert "deferred manager lost its leadership" in caplog.text

        wait_until(lambda: tq.count_runs("later") == 1, timeout=LEASE_TIMEOUT + 10)
        ran_at = tq.scalar("SELECT at FROM test_runs WHERE label = 'later'")
        late = (ran_at - run_at).total_seconds()
        print(f"future job released by the new leader, ran {late:.2f}s after its run_at")
        assert 0 <= late < 1.5
    finally:
        proxy.close()  # lets whatever still waits on the frozen link fail, so threads end
        managers.stop_all()


def test_still_held_is_false_within_the_deadline_on_a_frozen_link(tq, proxy):
    leadership = Leadership(
        proxy.url_for(tq.database_url), "lost-host", timedelta(seconds=LEASE_TIMEOUT)
    )
    try:
        assert leadership.try_acquire() and leadership.still_held()
        proxy.freeze()
        asked = time.monotonic()
        assert leadership.still_held() is False
        took = time.monotonic() - asked
        print(f"\nstill_held() on a frozen link: False after {took:.2f}s")
        assert leadership.timings.check_deadline <= took < leadership.timings.check_deadline + 1
        assert not leadership.held
    finally:
        leadership.close()
