"""Cron on the real servers: two deferred managers fire a schedule once per fire time, one
of them SIGKILLed midway; an outage of every manager runs the latest missed fire once; and
``tomqueue cron`` lists the schedules."""

import itertools
import json
import time
from datetime import timedelta

import pytest

from tests.conftest import stop_process, wait_until

pytestmark = pytest.mark.integration

EVERY_TWO = "tests.cron_jobs.EveryTwoSeconds"


def fires(tq) -> list[tuple]:
    """(fire_at, job_id) of the two-second schedule, in order."""
    return tq.sql(
        "SELECT fire_at, job_id FROM tomqueue_cron_fires WHERE name = %s ORDER BY fire_at",
        EVERY_TWO,
    )


def cron_jobs(tq) -> list[int]:
    return [
        job_id
        for (job_id,) in tq.sql(
            "SELECT id FROM tomqueue_jobs WHERE handler LIKE %s ORDER BY id",
            f'%"class":"{EVERY_TWO}"%',
        )
    ]


def test_two_managers_fire_once_per_fire_time_through_a_sigkill(tq):
    first = tq.spawn("deferred", "--app", "tests.cron_jobs")
    second = tq.spawn("deferred", "--app", "tests.cron_jobs")
    wait_until(lambda: len([f for f in fires(tq) if f[1]]) >= 3, timeout=30, message="3 fires")
    first.kill()  # SIGKILL: the leader most likely (it started first)
    first.wait()
    ran_before = len([f for f in fires(tq) if f[1]])
    wait_until(
        lambda: len([f for f in fires(tq) if f[1]]) >= ran_before + 3,
        timeout=30,
        message="3 more fires after the kill",
    )
    assert stop_process(second) == 0
    records = fires(tq)
    baseline, runs = records[0], records[1:]
    assert baseline[1] is None, "the first sight is recorded, not run"
    assert all(job_id is not None for _, job_id in runs)
    # one job per fire time, every two seconds, with no gap and no double
    times = [at for at, _ in runs]
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(seconds=2)] * (
        len(times) - 1
    )
    assert sorted(job_id for _, job_id in runs) == cron_jobs(tq)


def test_after_an_outage_of_every_manager_the_latest_missed_fire_runs_once(tq):
    manager = tq.spawn("deferred", "--app", "tests.cron_jobs")
    wait_until(lambda: len([f for f in fires(tq) if f[1]]) >= 2, timeout=30)
    assert stop_process(manager) == 0
    stopped = fires(tq)[-1][0]
    time.sleep(7)  # three fire times pass with no manager
    restarted = tq.spawn("deferred", "--app", "tests.cron_jobs")
    wait_until(lambda: fires(tq)[-1][0] > stopped, timeout=30, message="a fire after the outage")
    caught_up = [f for f in fires(tq) if f[0] > stopped]
    assert len(caught_up) >= 1
    first_after = caught_up[0][0]
    assert first_after - stopped >= timedelta(seconds=6), "only the latest missed one ran"
    assert stop_process(restarted) == 0
    assert sorted(job_id for _, job_id in fires(tq) if job_id) == cron_jobs(tq)


def test_tomqueue_cron_lists_schedules_with_last_and_next_fire(tq):
    manager = tq.spawn("deferred", "--app", "tests.cron_jobs")
    wait_until(lambda: len([f for f in fires(tq) if f[1]]) >= 1, timeout=30)
    assert stop_process(manager) == 0
    listed = tq.cli("cron", "--app", "tests.cron_jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert set(by_name) == {EVERY_TWO, "tests.cron_jobs.Nightly"}
    every_two = by_name[EVERY_TWO]
    last_fire, last_job = [(at, job) for at, job in fires(tq) if job][-1]
    assert every_two["last_job_id"] == last_job
    assert every_two["last_fire"] == last_fire.isoformat()
    assert by_name["tests.cron_jobs.Nightly"]["last_fire"] is None
    assert by_name["tests.cron_jobs.Nightly"]["timezone"] == "Europe/London"
    table = tq.cli("cron", "--app", "tests.cron_jobs")
    assert table.returncode == 0 and "Nightly" in table.stdout and "never" in table.stdout
    assert "30 1 * * *" in table.stdout
