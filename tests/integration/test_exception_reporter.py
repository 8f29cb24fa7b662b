"""tomqueue.configure(exception_reporter=fn) in real worker processes: called once when a
job fails for good, after every attempt with report_every_attempt, never breaking the job."""

import json
import subprocess
import sys

import pytest

import tomqueue
from tests.conftest import ROOT, stop_process, wait_until
from tests.obs_app import REPORTS, FailsOnce, FailsTwice, Succeeds

pytestmark = pytest.mark.integration


def reports(tq):
    rows = tq.sql("SELECT detail FROM test_runs WHERE label = %s ORDER BY id", REPORTS)
    return [json.loads(detail) for (detail,) in rows]


def failed_for_good(tq, job_id):
    row = tq.job(job_id)
    return row is not None and row["failed_at"] is not None


def start(tq, **env):
    environ = {**tq.environ, **env}
    tq.spawn("deferred", env=environ)  # releases the retries
    return tq.spawn("worker", "--app", "tests.obs_app", env=environ)


def test_a_job_failing_for_good_is_reported_once_with_its_id_class_and_attempts(tq):
    start(tq, TQ_CONFIGURE_REPORTER="1")
    job_id = tomqueue.enqueue(FailsTwice("twice"))
    wait_until(lambda: failed_for_good(tq, job_id), timeout=30, message="failed for good")
    assert tq.count_runs("twice") == 2  # a retried attempt, then the last one
    marker = tomqueue.enqueue(Succeeds("after"))  # everything the worker did is done
    wait_until(lambda: tq.job(marker) is None, timeout=20)
    assert reports(tq) == [
        {
            "exc_type": "ValueError",
            "exc": "twice is broken",
            "job_id": job_id,
            "job_class": FailsTwice.class_name(),
            "attempts": 2,
        }
    ]


def test_report_every_attempt_reports_the_retried_attempt_too(tq):
    # the reporter named in the environment, as an operator would: module:function
    start(
        tq,
        TOMQUEUE_EXCEPTION_REPORTER="tests.obs_app:record_report",
        TOMQUEUE_REPORT_EVERY_ATTEMPT="1",
    )
    job_id = tomqueue.enqueue(FailsTwice("every"))
    wait_until(lambda: failed_for_good(tq, job_id), timeout=30, message="failed for good")
    wait_until(lambda: len(reports(tq)) == 2, timeout=10, message="two reports")
    assert [(r["job_id"], r["attempts"], r["exc_type"]) for r in reports(tq)] == [
        (job_id, 1, "ValueError"),
        (job_id, 2, "ValueError"),
    ]


def test_a_reporter_that_raises_never_breaks_the_jobs_bookkeeping(tq):
    worker = start(tq, TQ_CONFIGURE_REPORTER="1", TQ_REPORTER_RAISES="1")
    first = tomqueue.enqueue(FailsOnce("broken reporter"))
    wait_until(lambda: failed_for_good(tq, first), timeout=30, message="failed for good")
    row = tq.job(first)
    assert row["attempts"] == 1 and row["locked_by"] is None
    assert "KeyError" in row["last_error"]
    later = tomqueue.enqueue(Succeeds("still working"))  # the slot carried on
    wait_until(lambda: tq.job(later) is None, timeout=20)
    assert [r["job_id"] for r in reports(tq)] == [first]
    assert worker.poll() is None


def test_an_exception_reporter_that_cannot_be_loaded_stops_the_worker_at_start(tq):
    env = {**tq.environ, "TOMQUEUE_EXCEPTION_REPORTER": "tests.no_such_module:fn"}
    result = subprocess.run(
        [sys.executable, "-m", "tomqueue.worker", "--app", "tests.jobs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "exception_reporter 'tests.no_such_module:fn' cannot be loaded" in result.stderr


def test_an_in_process_worker_reports_through_configure(tq, run_all):
    seen = []
    tomqueue.configure(exception_reporter=lambda exc, **kw: seen.append((type(exc), kw)))
    run_all()
    job_id = tomqueue.enqueue(FailsOnce("in process"))
    wait_until(lambda: seen, timeout=20, message="a report")
    assert seen == [
        (KeyError, {"job_id": job_id, "job_class": FailsOnce.class_name(), "attempts": 1})
    ]


def test_a_job_that_succeeds_is_not_reported(tq):
    worker = start(tq, TQ_CONFIGURE_REPORTER="1")
    job_id = tomqueue.enqueue(Succeeds("quick"))
    wait_until(lambda: tq.job(job_id) is None, timeout=20)
    assert stop_process(worker) == 0
    assert reports(tq) == []


def test_a_supervisor_refuses_a_reporter_that_cannot_be_loaded_before_any_child(tq):
    env = {**tq.environ, "TOMQUEUE_EXCEPTION_REPORTER": "tests.no_such_module:fn"}
    result = subprocess.run(
        [sys.executable, "-m", "tomqueue.worker", "--app", "tests.jobs", "--processes", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "supervisor started worker" not in result.stderr
    assert "error: exception_reporter 'tests.no_such_module:fn' cannot be loaded" in result.stderr
