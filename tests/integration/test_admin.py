"""The admin service (tomqueue.admin.Admin) against real PostgreSQL and RabbitMQ."""

from datetime import UTC, datetime, timedelta

import pytest

import tomqueue
from tests.admin_rows import fail, insert, live_lease, lock
from tests.conftest import wait_until
from tests.jobs import Record
from tomqueue.admin import Admin, Result
from tomqueue.filters import Filter, State

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


def test_no_action_touches_a_job_a_live_worker_is_running(tq):
    admin = Admin()
    job_id = insert()[0]
    with live_lease(tq, job_id) as worker:
        before = tq.job(job_id)
        for act in (
            admin.retry,
            admin.delete,
            admin.run_now,
            lambda i: admin.reschedule(i, HOUR),
            lambda i: admin.reschedule(i, datetime.now(UTC)),
        ):
            outcome = act(job_id)
            assert outcome.result is Result.RUNNING and not outcome.done
            assert outcome.running_on == f"{worker} run:{job_id}"
        assert tq.job(job_id) == before
        # a priority change is no danger to the run: it goes on, locked
        changed = admin.change_priority(job_id, 7)
        assert (
            changed.done and not changed.announced and changed.row.locked_by == before["locked_by"]
        )
    # the worker is gone (its backend ends a moment after the connection closes)
    outcome = wait_until(lambda: admin.retry(job_id).row, message="the lease gone")
    assert outcome.locked_by is None and outcome.attempts == 0


def test_missing_jobs_are_reported_not_found(tq):
    admin = Admin()
    for act in (admin.retry, admin.delete, admin.run_now, lambda i: admin.change_priority(i, 1)):
        assert act(10**9).result is Result.NOT_FOUND
    assert admin.reschedule(10**9, HOUR).result is Result.NOT_FOUND
    assert admin.get(10**9) is None and admin.show(10**9) is None


def test_retry_makes_a_failed_job_run_again(tq, run_worker):
    admin = Admin()
    job_id = tomqueue.enqueue(Record("again"), run_at=datetime.now(UTC) + HOUR)
    fail(tq, job_id)
    outcome = admin.retry(job_id)
    assert outcome.done and outcome.announced and outcome.broker_error is None
    assert (outcome.row.failed_at, outcome.row.attempts) == (None, 0)
    run_worker()
    wait_until(lambda: tq.job(job_id) is None, message="the retried job ran")
    assert tq.count_runs("again") == 1


def test_reschedule_later_then_run_now(tq, run_worker):
    admin = Admin()
    job_id = tomqueue.enqueue(Record("moved"))
    later = admin.reschedule(job_id, 2 * HOUR)
    assert later.done and not later.announced
    assert later.row.run_at > datetime.now(UTC) + HOUR and later.row.released_at is None
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert admin.reschedule(job_id, at).row.run_at == at
    with pytest.raises(ValueError, match="timezone-aware"):
        admin.reschedule(job_id, datetime(2030, 1, 1))
    run_worker()
    # the first notification (from enqueue) is stale now: the worker drops it
    now = admin.run_now(job_id)
    assert now.done and now.announced and now.row.released_at is not None
    wait_until(lambda: tq.job(job_id) is None, message="run now ran it")
    assert tq.count_runs("moved") == 1


def test_reschedule_of_a_failed_job_gives_it_fresh_attempts(tq):
    admin = Admin()
    job_id = insert()[0]
    fail(tq, job_id)
    row = admin.reschedule(job_id, HOUR).row
    assert (row.failed_at, row.attempts, row.crashes, row.released_at) == (None, 0, 0, None)
    assert admin.count(Filter(state=State.SCHEDULED)) == 1


def test_a_deleted_job_is_gone(tq):
    admin = Admin()
    job_id = insert()[0]
    outcome = admin.delete(job_id)
    assert outcome.done and outcome.row.id == job_id and tq.job(job_id) is None
    assert admin.delete(job_id).result is Result.NOT_FOUND


def test_change_priority_announces_a_due_job_again(tq, run_worker):
    admin = Admin()
    due = tomqueue.enqueue(Record("pri"))
    future = insert(run_at=datetime.now(UTC) + HOUR)[0]
    failed = insert()[0]
    fail(tq, failed)
    tq.sql("UPDATE tomqueue_jobs SET released_at = now() WHERE id = %s", future)
    moved = admin.change_priority(due, -3)
    assert moved.done and moved.announced and moved.row.priority == -3
    deferred = admin.change_priority(future, 20)
    assert not deferred.announced and deferred.row.released_at is None  # the manager's again
    kept = admin.change_priority(failed, 5)
    assert not kept.announced and kept.row.failed_at is not None and kept.row.priority == 5
    with pytest.raises(ValueError):
        admin.change_priority(due, 2**31)
    run_worker()
    wait_until(lambda: tq.job(due) is None, message="the job ran on its new level")


def test_an_action_whose_announcement_fails_leaves_the_row_to_the_sweep(tq, run_all):
    job_id = insert()[0]
    fail(tq, job_id)
    tomqueue.configure(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F")
    outcome = Admin().retry(job_id)
    assert outcome.done and not outcome.announced and outcome.broker_error
    assert tq.job(job_id)["released_at"] is None and tq.job(job_id)["failed_at"] is None
    tomqueue.configure(amqp_url=tq.amqp_url)
    run_all()
    wait_until(lambda: tq.job(job_id) is None, timeout=30, message="released by the sweep")


def test_keyset_pages_walk_2500_rows_once_each(tq):
    admin = Admin()
    ids = insert(2500)
    fail(tq, *ids[::10])
    seen, after, pages = [], None, 0
    while True:
        page = admin.list_jobs(after_id=after, limit=1000)
        seen += [row.id for row in page.jobs]
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == ids and pages == 3
    failed = Filter(state=State.FAILED)
    first = admin.list_jobs(failed, limit=200)
    second = admin.list_jobs(failed, after_id=first.next_after, limit=200)
    assert [r.id for r in first.jobs + second.jobs] == ids[::10] and second.next_after is None
    assert all(first.state(row) is State.FAILED for row in first.jobs)
    assert (admin.count(failed), admin.count(), admin.count(Filter(state="queued"))) == (
        250,
        2500,
        2250,
    )
    with pytest.raises(ValueError):
        admin.list_jobs(limit=0)


def test_filters_select_by_class_queue_error_priority_and_state(tq):
    admin = Admin()
    a = insert(2, class_name="app.jobs.SendInvoice", queue="billing", priority=5)
    b = insert(1, class_name="app.jobs.SendInvoiceLater", note="100% done_ok")
    c = insert(1, class_name="other.Report", run_at=datetime.now(UTC) + HOUR, queue="default")
    d = insert(1, class_name="other.Report")
    fail(tq, a[0], error="ValueError: card declined\nTraceback ...")
    lock(tq, "gone pid:1 key:99", 99, d[0])

    def ids(**kwargs):
        return [row.id for row in admin.list_jobs(Filter(**kwargs)).jobs]

    assert ids(class_name="SendInvoice") == a  # the last part, not a prefix of another
    assert ids(class_name="app.jobs.SendInvoice") == a
    assert ids(class_name="jobs.SendInvoiceLater") == b
    assert ids(queue="billing") == a
    assert ids(queue="default") == b + c + d  # no named queue, and the one named so
    assert ids(error="CARD DECLINED") == [a[0]]
    assert ids(error="100% done_") == b  # % and _ are text, not wildcards
    assert ids(error="100%_done") == []
    assert ids(priority=5) == a
    assert ids(state="failed") == [a[0]]
    assert ids(state="scheduled") == c
    assert ids(state="running") == d
    assert ids(state="queued") == [a[1], *b]
    assert ids(state="pending") == [a[1], *b, *c, *d]
    assert ids(state="queued", class_name="SendInvoice", queue="billing") == [a[1]]
    assert admin.count(Filter(class_name="Report")) == 2


def test_bulk_actions_go_in_batches_and_skip_running_jobs(tq):
    admin = Admin()
    failed = insert(7, class_name="app.Bulk")
    fail(tq, *failed)
    others = insert(3, class_name="app.Other")
    fail(tq, *others)
    running = insert(2, class_name="app.Bulk")
    with live_lease(tq, *running) as worker:
        report = admin.retry_all(Filter(class_name="Bulk"), batch_size=3)
        assert (report.done, report.unannounced) == (7, 0)
        assert [(h.job_id, h.running_on) for h in report.skipped] == [
            (job_id, f"{worker} run:{job_id}") for job_id in running
        ]
        assert admin.count(Filter(state=State.FAILED)) == 3  # the other class untouched
        deleted = admin.delete_all(Filter(class_name="app.Bulk"), batch_size=2)
        assert deleted.done == 7 and [h.job_id for h in deleted.skipped] == running
        assert all(tq.job(job_id) is not None for job_id in running)
    assert admin.delete_all(Filter(class_name="Nothing")).done == 0
    report = admin.delete_all(Filter(state=State.FAILED))
    assert (report.done, report.skipped) == (3, ())


def test_bulk_retry_announces_each_batch(tq, run_worker):
    ids = [tomqueue.enqueue(Record(f"bulk{i}")) for i in range(5)]
    fail(tq, *ids)
    report = Admin().retry_all(Filter(state=State.FAILED), batch_size=2)
    assert (report.done, report.unannounced, report.skipped) == (5, 0, ())
    run_worker()
    wait_until(lambda: tq.pending_count() == 0, message="every retried job ran")


def test_stats_count_by_state_level_queue_and_class(tq):
    admin = Admin()
    empty = admin.stats()
    assert empty.totals.total == 0 and empty.oldest_queued_age is None
    queued = insert(2, class_name="app.A", priority=-1, queue="billing")
    tq.sql(
        "UPDATE tomqueue_jobs SET run_at = now() - interval '90 seconds' WHERE id = %s", queued[0]
    )
    insert(1, class_name="app.B", run_at=datetime.now(UTC) + HOUR, priority=10)
    running = insert(1, class_name="app.B")
    failed = insert(1, class_name="app.A", priority=3)
    fail(tq, *failed)
    lock(tq, "w pid:1 key:5", 5, *running)
    stats = admin.stats()
    totals = stats.totals
    assert (totals.queued, totals.scheduled, totals.running, totals.failed) == (2, 1, 1, 1)
    assert stats.oldest_queued_age >= timedelta(seconds=89)
    assert stats.by_class["app.A"].queued == 2 and stats.by_class["app.A"].failed == 1
    assert stats.by_queue["billing"].total == 2 and stats.by_queue["default"].total == 3
    assert stats.by_level["high"].queued == 2 and stats.by_level["bulk"].scheduled == 1
    assert stats.by_level["low"].failed == 1 and stats.by_level["normal"].running == 1
    assert stats.by_priority[10].scheduled == 1
    assert stats.to_dict()["by_class"]["app.B"]["total"] == 2


def test_workers_lists_live_leases_with_their_jobs_and_dead_holders(tq, run_worker, run_deferred):
    admin = Admin()
    # future rows: the worker's sweep has no reason to announce them meanwhile
    busy = insert(2, run_at=datetime.now(UTC) + HOUR)
    orphan = insert(1, run_at=datetime.now(UTC) + HOUR)
    idle = run_worker()
    run_deferred()  # its leadership lock is not a worker
    wait_until(lambda: idle.lease.held)
    # its lease is gone: listed until the sweep takes the row over (after the orphan grace)
    lock(tq, "lost pid:9 key:31337", 31337, *orphan)
    with live_lease(tq, *busy, key=4242) as name:
        found = {worker.key: worker for worker in admin.workers()}
        assert set(found) == {4242, 31337, idle.lease.key}
        live = found[4242]
        assert (live.name, live.alive) == (name, True)
        assert [job.job_id for job in live.jobs] == busy and live.since is not None
        assert (
            live.jobs[0].running_for >= timedelta(0)
            and live.jobs[0].class_name == "tests.jobs.Record"
        )
        dead = found[31337]
        assert (dead.alive, dead.name, [j.job_id for j in dead.jobs]) == (
            False,
            "lost pid:9 key:31337",
            orphan,
        )
        assert found[idle.lease.key].alive and found[idle.lease.key].jobs == ()
        assert found[4242].to_dict()["jobs"][0]["id"] == busy[0]


def test_republish_announces_due_jobs(tq, run_worker):
    job_id = insert()[0]  # never announced
    report = Admin().republish()
    assert (report.sent, report.future) == (1, 0)
    run_worker()
    wait_until(lambda: tq.job(job_id) is None)


def test_hand_written_handlers_are_read_by_class_too(tq):
    admin = Admin()
    odd, broken = insert(2)
    tq.sql("""UPDATE tomqueue_jobs SET handler = '{"v": 1, "class": "app.Odd", "state": {}}' WHERE id = %s""", odd)  # fmt: skip
    tq.sql("UPDATE tomqueue_jobs SET handler = 'not json' WHERE id = %s", broken)
    assert [row.id for row in admin.list_jobs(Filter(class_name="Odd")).jobs] == [odd]
    assert admin.list_jobs().jobs[1].class_name == "<undecodable>"
    assert set(admin.stats().by_class) == {"app.Odd", "<undecodable>"}
