"""Cron's exactly-once promise under SIGKILL: a manager killed inside the transaction that
claimed a fire time (the job built, nothing committed) leaves that fire time to the other
manager, which enqueues it once."""

import pytest

from tests.conftest import stop_process, wait_until

pytestmark = pytest.mark.integration

NAME = "tests.cron_fault.PausesWhileClaimed"


def test_a_manager_killed_holding_a_claim_leaves_the_fire_time_to_another(tq):
    paused = tq.spawn(
        "deferred", "--app", "tests.cron_fault", env=tq.environ | {"TQ_PAUSE_AT": "cron_build"}
    )
    wait_until(lambda: tq.count_runs("pause", "cron_build") == 1, timeout=30, message="paused")
    other = tq.spawn("deferred", "--app", "tests.cron_fault")
    # the other manager's claim of that fire time waits on the uncommitted one
    held = tq.sql(
        "SELECT count(*) FROM tomqueue_cron_fires WHERE name = %s AND job_id IS NOT NULL", NAME
    )
    assert held == [(0,)]
    paused.kill()
    paused.wait()
    wait_until(
        lambda: (
            tq.scalar(
                "SELECT count(*) FROM tomqueue_cron_fires WHERE name = %s AND job_id IS NOT NULL",
                NAME,
            )
            >= 3
        ),
        timeout=30,
        message="the fire time taken over, and more after it",
    )
    assert stop_process(other) == 0
    runs = tq.sql(
        "SELECT fire_at, job_id FROM tomqueue_cron_fires WHERE name = %s AND job_id IS NOT NULL "
        "ORDER BY fire_at",
        NAME,
    )
    jobs = tq.sql(
        "SELECT id FROM tomqueue_jobs WHERE handler LIKE %s ORDER BY id", f'%"class":"{NAME}"%'
    )
    assert sorted(job_id for _, job_id in runs) == [job_id for (job_id,) in jobs]
    assert len({at for at, _ in runs}) == len(runs)
