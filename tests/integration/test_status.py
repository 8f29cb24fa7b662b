"""tomqueue.status(job_id) against real servers: what another connection sees while a job
runs, after it succeeds, fails for good or waits for a retry; expiry and the purge; the
throttle counted in statements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

import tomqueue
from tests.conftest import wait_until
from tests.jobs import Reporting, ReportingRetried, ShortLived, Ticker, gate
from tomqueue.app import App
from tomqueue.default_app import default_app

pytestmark = pytest.mark.integration


def other_connection_status(tq, job_id):
    """The status as a separate App (its own engine and connections) reads it."""
    app = App(default_app().settings)
    try:
        return app.status(job_id)
    finally:
        app.close()


def test_a_running_job_is_working_with_its_progress_then_completed(tq, run_worker):
    job_id = tomqueue.enqueue(Reporting("run1", total=10, steps=3))
    assert tomqueue.status(job_id).state == "queued"
    run_worker()
    working = wait_until(
        lambda: (s := other_connection_status(tq, job_id)) and s.fields.get("step") and s,
        message="the job's first report",
    )
    assert working.state == "working" and working.working
    assert (working.value, working.total, working.progress) == (3, 10, 0.3)
    assert working.fields == {"step": "waiting"}
    gate("run1").set()
    done = wait_until(
        lambda: (s := tomqueue.status(job_id)) and s.completed and s, message="completed"
    )
    # the last increment was throttled: the success delete carried it
    assert done.to_dict() == {
        "id": job_id,
        "state": "completed",
        "progress": 0.4,
        "value": 4,
        "total": 10,
        "step": "done",
        "rows": 3,
    }
    assert tq.job(job_id) is None
    row = tq.sql(
        "SELECT class_name, outcome, attempts, started_at <= finished_at, duration_seconds >= 0,"
        " enqueued_at <= started_at, expires_at - finished_at FROM tomqueue_job_history"
        " WHERE job_id = %s",
        job_id,
    )
    assert row == [("tests.jobs.Reporting", "succeeded", 1, True, True, True, timedelta(days=1))]


def test_a_job_failed_for_good_is_failed_with_what_it_reported(tq, run_worker):
    job_id = tomqueue.enqueue(Reporting("fail1", fail=True))
    gate("fail1").set()
    run_worker()
    failed = wait_until(lambda: (s := tomqueue.status(job_id)) and s.failed and s)
    assert failed.fields == {"step": "done", "rows": 3}
    assert (failed.value, failed.total) == (4, 10)
    outcome = tq.sql("SELECT outcome FROM tomqueue_job_history WHERE job_id = %s", job_id)
    assert outcome == [("failed",)]


def test_a_job_waiting_for_its_retry_is_queued(tq, run_worker):
    job_id = tomqueue.enqueue(ReportingRetried("retry1", fail=True))
    gate("retry1").set()
    run_worker()
    wait_until(lambda: (tq.job(job_id) or {}).get("attempts") == 1, message="the first failure")
    status = tomqueue.status(job_id)
    assert status is not None and status.queued and status.fields["step"] == "done"
    row = tq.sql(
        "SELECT outcome, expires_at - updated_at FROM tomqueue_job_history WHERE job_id = %s",
        job_id,
    )
    # it has not ended; its report is kept for max_run_time + status_ttl after the last one
    assert row == [(None, timedelta(hours=4) + timedelta(days=1))]


def test_a_job_that_never_reports_is_completed_and_unknown_ids_are_none(tq, run_worker):
    from tests.jobs import Record

    job_id = tomqueue.enqueue(Record("plain"))
    run_worker()
    done = wait_until(lambda: (s := tomqueue.status(job_id)) and s.completed and s)
    assert done.to_dict() == {
        "id": job_id,
        "state": "completed",
        "progress": None,
        "value": None,
        "total": None,
    }
    assert tomqueue.status(job_id + 1000) is None
    assert tomqueue.status(-1) is None


def test_the_class_status_ttl_expires_the_status_and_the_leader_purges_it(
    tq, run_worker, run_deferred
):
    tomqueue.configure(sweep_interval=timedelta(seconds=0.2), status_ttl=timedelta(hours=2))
    short = tomqueue.enqueue(ShortLived("short"))
    from tests.jobs import Record

    kept = tomqueue.enqueue(Record("kept"))
    run_worker()
    wait_until(lambda: tq.pending_count() == 0)
    lifetimes = dict(tq.sql("SELECT job_id, expires_at - finished_at FROM tomqueue_job_history"))
    assert lifetimes == {short: timedelta(seconds=1), kept: timedelta(hours=2)}
    # expired: None at once, even before the purge
    wait_until(lambda: tomqueue.status(short) is None, timeout=5, message="expiry")
    assert tomqueue.status(kept).completed
    manager = run_deferred()
    wait_until(
        lambda: tq.scalar("SELECT count(*) FROM tomqueue_job_history") == 1,
        message="the leader's purge",
    )
    assert manager.purged_total == 1
    assert tq.scalar("SELECT job_id FROM tomqueue_job_history") == kept


def test_the_purge_deletes_a_batch_at_a_time(tq):
    tq.sql(
        "INSERT INTO tomqueue_job_history (job_id, outcome, expires_at)"
        " SELECT n, 'succeeded', now() - interval '1 second' FROM generate_series(1, 2500) n"
    )
    tq.sql("INSERT INTO tomqueue_job_history (job_id, expires_at) VALUES (9999, NULL)")
    store = default_app().store.status
    assert [store.purge_expired(1000) for _ in range(4)] == [1000, 1000, 500, 0]
    assert tq.scalar("SELECT count(*) FROM tomqueue_job_history") == 1


def test_the_throttle_bounds_the_writes_of_a_busy_job(tq, run_worker):
    tomqueue.configure(status_throttle=timedelta(seconds=0.5))
    runtime = default_app()
    writes: list[str] = []

    def count(conn, cursor, statement, params, context, many):
        if statement.lstrip().startswith("INSERT INTO tomqueue_job_history"):
            writes.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", count)
    job_id = tomqueue.enqueue(Ticker(2.0))
    run_worker()
    done = wait_until(lambda: (s := tomqueue.status(job_id)) and s.completed and s, timeout=30)
    # ~2,000 increments: the total at once, then at most one write per 0.5 s
    assert 2 <= len(writes) <= 2 / 0.5 + 2, len(writes)
    assert done.total == 2000 and done.value is not None and done.value > 100


def test_a_handler_that_jsonb_would_refuse_still_completes(tq, run_worker):
    # JSON text that PostgreSQL's jsonb refuses (NUL, a lone surrogate): the history row
    # takes the class name from the worker, never parses the handler in SQL
    from tests.jobs import Quiet

    job_id = tomqueue.enqueue(Quiet({"nul": "a\x00b", "lone": "\ud800"}))
    run_worker()
    done = wait_until(lambda: (s := tomqueue.status(job_id)) and s.completed and s)
    assert done.state == "completed"
    assert tq.scalar("SELECT class_name FROM tomqueue_job_history") == "tests.jobs.Quiet"


def test_a_database_not_migrated_to_the_history_table_is_refused_at_start(tq):
    from tomqueue.errors import ConfigurationError

    tq.sql("DROP TABLE tomqueue_job_history")
    app = App(default_app().settings)
    try:
        with pytest.raises(ConfigurationError, match="tomqueue_job_history.*tomqueue migrate"):
            app.ensure_prefix_bound()
    finally:
        app.close()
