"""Each per-caller store against the real database, and the SQL digest against Python's.

The worker's fast lock compares ``statements.DIGEST`` (PostgreSQL) with the digest a
notification carries (``tomqueue.snapshot.row_digest``, Python): if they ever disagreed on
some row, that job would never run, so they are compared here on awkward rows.
"""

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import create_engine

from tests.conftest import libpq, wait_until
from tomqueue.admission import Admission, admit
from tomqueue.database import ADVISORY_NAMESPACE
from tomqueue.default_app import default_app
from tomqueue.store import statements
from tomqueue.store.values import NewJob

pytestmark = pytest.mark.integration

HANDLERS = {
    "unicode": '{"class": "Ünïcødé", "args": ["日本語", "👩‍👩‍👧 🎉", "\u202eRTL", "e\u0301", "ß"]}',
    "quotes": """{"s": "it's \\"quoted\\" \\\\ back\\\\slash", "sql": "'; DROP TABLE x; --"}""",
    "placeholders": '{"pct": "100% %s %(id)s %%", "binds": ":id :: $1 ?"}',
    "long": '{"blob": "' + "é" * 300_000 + "x" * 700_000 + '"}',
    "separators": "a\x1fb\x1f\x1f\nline\r\n\ttab",
}
RUN_ATS = {
    "one microsecond": datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
    "last microsecond": datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC),
    "whole second": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    # the far ends of what the table accepts (migration 0003: years 1 to 9999)
    "far future": datetime(9999, 12, 29, 23, 59, 59, 999_999, tzinfo=UTC),
    "far future, -12": datetime(9999, 12, 29, 11, 0, tzinfo=timezone(timedelta(hours=-12))),
    "year one": datetime(1, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
    "+05:45": datetime(2026, 6, 30, 23, 59, 59, 123_456, tzinfo=timezone(timedelta(hours=5.75))),
    "-03:30": datetime(2026, 3, 8, 1, 30, tzinfo=timezone(-timedelta(hours=3.5))),
    "+14 across new year": datetime(2027, 1, 1, 0, 0, 0, 500_000, timezone(timedelta(hours=14))),
    "-01 across a leap day": datetime(2028, 2, 29, 23, 30, tzinfo=timezone(-timedelta(hours=1))),
}


def new(handler="{}", priority=0, run_at=None, queue=None):
    return NewJob(handler=handler, priority=priority, run_at=run_at, queue=queue)


def test_the_sql_digest_equals_pythons_on_awkward_rows(tq):
    store = default_app().store
    cases = [(h, r) for h in HANDLERS for r in RUN_ATS]
    priorities = [-(2**31), 2**31 - 1, -1, 0, 10]
    rows = store.enqueue.insert_committed(
        [
            new(HANDLERS[h], priorities[n % len(priorities)], RUN_ATS[r])
            for n, (h, r) in enumerate(cases)
        ]
    )
    tq.sql("UPDATE tomqueue_jobs SET attempts = id % 4, released_at = NULL")
    mismatched = []
    for (handler, run_at), inserted in zip(cases, rows, strict=True):
        row = store.admin.get(inserted.id)
        assert row is not None and row.run_at == RUN_ATS[run_at]
        if store.admin.sql_digest(row.id) != row.digest:
            mismatched.append((handler, run_at))
    assert mismatched == []
    python = {row.id: store.admin.get(row.id).digest for row in rows}
    # the deferred manager's digests are the same SQL, read in bulk
    _, held = store.deferred.fetch_unreleased(1e12, 1000)
    assert {job_id: digest for job_id, digest, *_ in held} == python
    # and the session's time zone does not enter into it
    with psycopg.connect(libpq(tq.database_url), autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'Pacific/Chatham'")
        query = f"SELECT id, {statements.DIGEST} FROM tomqueue_jobs"
        assert dict(conn.execute(query).fetchall()) == python


def test_the_fast_lock_runs_exactly_when_admission_says_run(tq):
    store = default_app().store
    now = datetime.now(UTC)
    past, future = now - timedelta(minutes=1), now + timedelta(hours=1)
    ids = [row.id for row in store.enqueue.insert_committed([new(run_at=past)] * 4)]
    ids.append(store.enqueue.insert_committed([new(run_at=future)])[0].id)
    tq.sql("UPDATE tomqueue_jobs SET failed_at = now() WHERE id = %s", ids[1])
    tq.sql("UPDATE tomqueue_jobs SET locked_by = 'w run:1', lock_key = 9 WHERE id = %s", ids[2])
    db_now = store.admin.db_now()
    for job_id in ids:
        row = store.admin.get(job_id)
        digest = row.digest if job_id != ids[3] else "stale"
        expected = admit(row, digest, db_now, holder_alive=False)
        params = {"id": job_id, "digest": digest, "by": "me run:1", "key": 5}
        locked = store.executor.hot_rows(statements.LOCK_FAST, params)
        assert bool(locked) == (expected is Admission.RUN), (job_id, expected)


def test_enqueue_writes_in_the_callers_transaction(tq):
    store = default_app().store
    engine = create_engine(tq.database_url)
    try:
        with engine.connect() as conn:
            [row] = store.enqueue.insert(conn, [new('{"a": 1}')])
            assert tq.job(row.id) is None  # not visible outside the caller's transaction
            conn.rollback()
        assert tq.job(row.id) is None
        with engine.begin() as conn:
            rows = store.enqueue.insert(
                conn, [new(run_at=datetime.now(UTC) + timedelta(days=1)), new()]
            )
        assert [tq.job(r.id)["handler"] for r in rows] == ["{}", "{}"]
        assert rows[0].id < rows[1].id  # input order
        assert rows[0].released_at is None and rows[1].released_at is not None
    finally:
        engine.dispose()
    store.enqueue.unrelease([rows[1].id])
    assert tq.job(rows[1].id)["released_at"] is None


def test_worker_locks_then_records_a_retry_or_a_failure_for_good(tq):
    store = default_app().store
    a, b, c = store.enqueue.insert_committed(
        [new(), new(), new(run_at=datetime.now(UTC) + timedelta(hours=1))]
    )
    first = store.worker.lock_for_run(a.id, a.digest, "w run:1", 5)
    assert first.admission is Admission.RUN and first.row.locked_by == "w run:1"
    retry_at = first.db_now + timedelta(minutes=5)
    again = store.worker.record_failure(a.id, "w run:1", 1, "boom\x00", retry_at)
    assert (again.attempts, again.run_at, again.failed_at) == (1, retry_at, None)
    assert again.last_error == "boom\\x00" and again.locked_by is None
    store.worker.lock_for_run(b.id, b.digest, "w run:2", 5)
    done = store.worker.record_failure(b.id, "w run:2", 3, "out of attempts", None)
    assert done.failed_at is not None and done.run_at == b.run_at  # run_at kept
    tq.sql("UPDATE tomqueue_jobs SET released_at = now() WHERE id = %s", c.id)
    assert store.worker.lock_for_run(c.id, c.digest, "w run:3", 5).admission is Admission.DEFER
    assert tq.job(c.id)["released_at"] is None  # handed back to the deferred manager
    missing = store.worker.lock_for_run(10**9, "x", "w run:4", 5)
    assert missing.admission is Admission.DROP_MISSING and missing.db_now.tzinfo is not None


def test_worker_deletes_or_fails_only_what_this_attempt_holds(tq):
    store = default_app().store
    a, b = store.enqueue.insert_committed([new(), new()])
    store.worker.lock_for_run(a.id, a.digest, "w run:1", 5)
    assert store.worker.delete_succeeded(a.id, "w run:0") is False
    assert store.worker.delete_succeeded(a.id, "w run:1") is True
    assert tq.job(a.id) is None
    store.worker.lock_for_run(b.id, b.digest, "w run:2", 5)
    assert store.worker.fail_held(b.id, "w run:0", "no") is None
    failed = store.worker.fail_held(b.id, "w run:2", "unknown class")
    assert (failed.attempts, failed.last_error, failed.locked_by) == (1, "unknown class", None)


def test_admin_retry_resets_a_failed_job_but_not_one_a_live_worker_runs(tq):
    store = default_app().store
    failed, running = store.enqueue.insert_committed([new(), new()])
    tq.sql("UPDATE tomqueue_jobs SET failed_at = now(), attempts = 3, crashes = 2 WHERE id = %s",
           failed.id)  # fmt: skip
    reset = store.admin.retry(failed.id).row
    assert (reset.failed_at, reset.attempts, reset.crashes) == (None, 0, 0)
    assert reset.released_at is not None
    assert store.admin.retry(10**9).row is None
    with psycopg.connect(libpq(tq.database_url), autocommit=True) as lease:
        lease.execute("SELECT pg_advisory_lock(%s::int, %s::int)", (ADVISORY_NAMESPACE, 77))
        tq.sql("UPDATE tomqueue_jobs SET locked_by = 'w run:7', lock_key = 77, "
               "locked_at = now() WHERE id = %s", running.id)  # fmt: skip
        refused = store.admin.retry(running.id)
        assert (refused.row, refused.running_on) == (None, "w run:7")
        assert store.sweep.dead_holders() == []  # its holder is alive
    # its worker is gone (its backend ends a moment after the connection closes)
    reset = wait_until(lambda: store.admin.retry(running.id).row, message="the lease gone")
    assert reset.locked_by is None


def test_admin_lists_counts_pages_and_deletes(tq):
    store = default_app().store
    rows = store.enqueue.insert_committed([new() for _ in range(5)])
    future = store.enqueue.insert_committed([new(run_at=datetime.now(UTC) + timedelta(hours=1))])[0]
    tq.sql("UPDATE tomqueue_jobs SET failed_at = now() WHERE id = %s", rows[0].id)
    assert [r.id for r in store.admin.list_jobs(failed_only=True)] == [rows[0].id]
    assert len(store.admin.list_jobs(limit=3)) == 3
    assert (store.admin.count_jobs(), store.admin.count_jobs(failed_only=True)) == (6, 1)
    pages = list(store.admin.iter_due_pending(batch_size=2))
    assert [[r.id for r in page] for page in pages] == [[r.id for r in rows[1:3]], [rows[3].id, rows[4].id]]  # fmt: skip
    assert store.admin.unrelease_future() == 0  # the future row was never released
    store.admin.mark_republished([(future.id, future.run_at)])
    assert store.admin.unrelease_future() == 1
    assert store.admin.delete(future.id) is True and store.admin.delete(future.id) is False


def test_deferred_holds_unreleased_rows_in_run_at_order_and_marks_them(tq):
    store = default_app().store
    now = datetime.now(UTC)
    late, soon, _beyond = store.enqueue.insert_committed(
        [new(run_at=now + timedelta(seconds=s)) for s in (60, 30, 7200)]
    )
    db_now, held = store.deferred.fetch_unreleased(3600, 100)
    assert abs(db_now - now) < timedelta(seconds=30)
    assert [(i, d, r) for i, d, r, *_ in held] == [
        (soon.id, soon.digest, soon.run_at),
        (late.id, late.digest, late.run_at),
    ]
    moved = late.run_at + timedelta(seconds=1)
    tq.sql("UPDATE tomqueue_jobs SET run_at = %s WHERE id = %s", moved, late.id)
    store.deferred.mark_released_at([(soon.id, soon.run_at), (late.id, late.run_at)])
    assert tq.job(soon.id)["released_at"] is not None
    assert tq.job(late.id)["released_at"] is None  # rescheduled meanwhile: not marked
    assert [i for i, *_ in store.deferred.fetch_unreleased(3600, 100)[1]] == [late.id]


def test_sweep_recovers_orphans_and_releases_stranded_and_unannounced_rows(tq):
    store = default_app().store
    orphan, stranded, unannounced, stale = store.enqueue.insert_committed([new()] * 4)
    lock = "UPDATE tomqueue_jobs SET locked_at = now(), locked_by = %s, lock_key = %s WHERE id = %s"
    tq.sql(lock, "gone run:1", 41, orphan.id)
    tq.sql(lock, "me run:2", 42, stranded.id)
    assert (orphan.id, "gone run:1", 41) in store.sweep.dead_holders()
    [recovered] = store.sweep.recover_orphans([(orphan.id, "gone run:1")])
    assert (recovered.attempts, recovered.crashes, recovered.locked_by) == (1, 1, None)
    assert "worker gone run:1 died" in recovered.last_error
    assert store.sweep.own_locks(42) == [(stranded.id, "me run:2")]
    [released] = store.sweep.release_stranded([(stranded.id, "me run:2")])
    assert (released.attempts, released.locked_by) == (0, None)
    tq.sql("UPDATE tomqueue_jobs SET released_at = NULL, run_at = now() - interval '1 minute' "
           "WHERE id = %s", unannounced.id)  # fmt: skip
    assert [r.id for r in store.sweep.claim_unannounced(10)] == [unannounced.id]
    tq.sql("UPDATE tomqueue_jobs SET released_at = now() - interval '1 hour', priority = 3 "
           "WHERE id = %s", stale.id)  # fmt: skip
    assert store.sweep.stale_places(60) == [(None, 3)]
    assert (
        store.sweep.claim_stale([3], 60, announced_before=datetime.now(UTC) - timedelta(hours=2))
        == []
    )
    assert [r.id for r in store.sweep.claim_stale([3], 60)] == [stale.id]
    assert store.sweep.stale_places(60) == []
