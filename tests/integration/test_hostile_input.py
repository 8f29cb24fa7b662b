"""Hostile input against a real worker and deferred manager: nothing stops a process, no
message costs a slot for ever, no job is left locked, and every failure says why.

docs/reliability.md has the table these tests prove.
"""

import time
from datetime import UTC, datetime, timedelta

import pika
import pytest
from click.testing import CliRunner

import tomqueue
from tests import hostile_jobs as hj
from tests.conftest import wait_until
from tests.jobs import Record, Slow
from tests.unit.test_hostile_messages import HOSTILE_BODIES
from tomqueue.cli import main as cli
from tomqueue.default_app import default_app
from tomqueue.notifications import notification_for
from tomqueue.sweep import Sweeper
from tomqueue.worker.outcome import Outcome

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)

# the 100 MB body is refused by the broker itself (max_message_size); see test below
WIRE_BODIES = {k: v for k, v in HOSTILE_BODIES.items() if len(v) < 1_000_000}


def publish_raw(tq, queue: str, bodies) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    channel = connection.channel()
    for body in bodies:
        channel.basic_publish("", queue, body)
    connection.close()


def announce(tq, job_id: int) -> None:
    """Publish the notification a row deserves right now (what republish would send)."""
    runtime = default_app()
    row = runtime.store.admin.get(job_id)
    runtime.publisher.publish([notification_for(row, runtime.settings.priority_map)])


# -- messages -----------------------------------------------------------------------------


def test_hostile_messages_never_cost_a_concurrency_one_worker_its_slot(tq, run_worker):
    tomqueue.enqueue(Record("warmup"))  # declares the topology
    tq.flush_announcements()
    for level in ("high", "normal"):
        publish_raw(tq, f"{tq.prefix}.balance.{level}", WIRE_BODIES.values())
    worker = run_worker(concurrency=1)
    after = tomqueue.enqueue(Record("after hostile"))
    wait_until(lambda: tq.job(after) is None, timeout=20, message="a normal job after them")
    wait_until(lambda: worker.outcomes[Outcome.MALFORMED] == 2 * len(WIRE_BODIES))
    for level in ("high", "normal"):
        assert tq.queue_depth(f"{tq.prefix}.balance.{level}") == 0


def test_hostile_messages_never_stop_the_deferred_manager(tq, run_deferred, run_worker):
    tomqueue.enqueue(Record("warmup"))
    manager = run_deferred()
    publish_raw(tq, f"{tq.prefix}.deferred", WIRE_BODIES.values())
    run_at = datetime.now(UTC) + timedelta(seconds=2)
    job_id = tomqueue.enqueue(Record("future after hostile"), run_at=run_at)
    run_worker()
    wait_until(lambda: tq.job(job_id) is None, timeout=20, message="future job released")
    wait_until(lambda: tq.queue_depth(f"{tq.prefix}.deferred") == 0)
    assert manager.released_total >= 1


def test_the_broker_refuses_a_100mb_body(tq):
    """bin/servers-start sets max_message_size: memory taken from the broker is bounded."""
    tomqueue.enqueue(Record("warmup"))
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.AMQPError):
        channel.basic_publish("", f"{tq.prefix}.balance.normal", b"x" * (100 * 1024 * 1024))
    if connection.is_open:
        connection.close()
    assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 1  # only the warmup


def test_a_message_that_always_fails_before_the_lock_is_dropped_after_three_tries(tq, run_worker):
    from tomqueue.worker.layers import LockJob

    doomed = tomqueue.enqueue(Record("doomed"))

    class FailsBeforeLock:
        def __call__(self, ctx, call_next):
            if ctx.job_id == doomed:
                raise RuntimeError("always fails before the row is locked")
            return call_next(ctx)

    def customize(stack):
        stack.insert_before(LockJob, FailsBeforeLock())

    default_app().edit_worker_stack(customize)  # the tq fixture drops this app afterwards
    worker = run_worker()
    after = tomqueue.enqueue(Record("after"))
    wait_until(lambda: tq.job(after) is None, message="the worker goes on")
    wait_until(lambda: tq.queue_depth(f"{tq.prefix}.balance.normal") == 0)
    assert worker.outcomes[Outcome.ERRORED] == 3
    row = tq.job(doomed)
    assert row["locked_by"] is None and row["failed_at"] is None  # the row stays the truth


# -- rows ---------------------------------------------------------------------------------

PATHOLOGICAL_HANDLERS = {
    "deeply nested": ('{"v":1,"class":"tests.jobs.Record","state":{"label":' + "[" * 100_000 + "1"
                      + "]" * 100_000 + "}}", "nested too deeply"),
    "not json": ("{{{", "not JSON"),
    "json but not an object": ("[1,2,3]", "not a JSON object"),
    "class not a string": ('{"v":1,"class":7,"state":{}}', "string 'class'"),
    "state shadows a method": ('{"v":1,"class":"tests.jobs.Record","state":'
                               '{"label":"x","reschedule_at":1}}', "would replace"),
    "state shadows perform": ('{"v":1,"class":"tests.jobs.Record","state":'
                              '{"label":"x","perform":"rm -rf /"}}', "would replace"),
    "dunder state key": ('{"v":1,"class":"tests.jobs.Record","state":{"__class__":"x"}}',
                         "dunder"),
    "unknown class": ('{"v":1,"class":"myapp.jobs.Gone","state":{}}', "tests.jobs"),
    "a non-job class": ('{"v":1,"class":"subprocess.Popen","state":{"args":["true"]}}',
                        "not registered"),
}  # fmt: skip


def test_pathological_rows_fail_alone_with_a_clear_error(tq, run_worker):
    ids = {}
    for name, (handler, _) in PATHOLOGICAL_HANDLERS.items():
        job_id = tomqueue.enqueue(Record(name))
        tq.sql("UPDATE tomqueue_jobs SET handler = %s WHERE id = %s", handler, job_id)
        ids[name] = job_id
    for job_id in ids.values():
        announce(tq, job_id)
    run_worker()
    after = tomqueue.enqueue(Record("after the bad rows"))
    wait_until(lambda: tq.job(after) is None, message="the worker goes on")
    for name, (_, fragment) in PATHOLOGICAL_HANDLERS.items():
        row = wait_until(lambda i=ids[name]: (tq.job(i) or {}).get("failed_at") and tq.job(i))
        assert fragment in row["last_error"], (name, row["last_error"][:300])
        assert row["locked_by"] is None
        assert f"tomqueue retry {ids[name]}" in row["last_error"] or "retry" in row["last_error"]
    assert tq.count_runs("x") == 0
    listing = CliRunner().invoke(cli, ["jobs"])
    assert listing.exit_code == 0, listing.output
    assert "<undecodable>" in listing.output


@pytest.mark.parametrize("column", ["run_at", "created_at", "locked_at", "released_at"])
def test_timestamps_out_of_range_are_refused_by_the_database(tq, column):
    job_id = tomqueue.enqueue(Record("x"))
    for value in ("infinity", "-infinity", "20000-01-01 00:00:00+00", "0001-01-01 00:00:00+14"):
        with pytest.raises(Exception, match=f"tomqueue_jobs_{column}_in_range"):
            tq.sql(f"UPDATE tomqueue_jobs SET {column} = %s WHERE id = %s", value, job_id)


# -- user code ----------------------------------------------------------------------------

USER_CODE_FAILURES = {
    hj.RaisesSystemExit: "SystemExit: 3",
    hj.RaisesKeyboardInterrupt: "KeyboardInterrupt",
    hj.RaisesUnprintable: "<str() of the exception raised RuntimeError>",
    hj.RaisesUnstorable: "bad \\x00 byte and \\udc80 surrogate",
    hj.ErrorHookRaises: "ValueError: the real error",
    hj.RescheduleRaises: "reschedule_at() raised RuntimeError",
    hj.RescheduleReturnsJunk: "reschedule_at() returned 'tomorrow'",
    hj.AfterHookRaises: "KeyboardInterrupt",
}


def test_any_failure_of_user_code_is_a_recorded_attempt_and_the_slot_goes_on(tq, run_worker):
    ids = {cls: tomqueue.enqueue(cls(cls.__name__)) for cls in USER_CODE_FAILURES}
    run_worker(concurrency=1)
    after = tomqueue.enqueue(Record("after user code"))
    wait_until(lambda: tq.job(after) is None, timeout=20, message="the slot goes on")
    for cls, fragment in USER_CODE_FAILURES.items():
        row = wait_until(lambda i=ids[cls]: (tq.job(i) or {}).get("attempts") == 1 and tq.job(i))
        assert row["locked_by"] is None, cls.__name__
        assert row["failed_at"] is None and row["run_at"] > datetime.now(UTC), cls.__name__
        assert fragment in row["last_error"], (cls.__name__, row["last_error"][:300])
        assert len(row["last_error"]) <= 64 * 1024


def test_a_failure_hook_that_exits_still_leaves_the_job_failed(tq, run_worker):
    job_id = tomqueue.enqueue(hj.FailureHookRaises("fh"))
    run_worker()
    row = wait_until(lambda: (tq.job(job_id) or {}).get("failed_at") and tq.job(job_id))
    assert row["locked_by"] is None and "fails for good" in row["last_error"]
    wait_until(lambda: tq.count_runs("fh", "failure") == 1)
    after = tomqueue.enqueue(Record("after"))
    wait_until(lambda: tq.job(after) is None)


# -- locks --------------------------------------------------------------------------------


def test_retry_refuses_a_job_a_live_worker_is_running(tq, run_worker):
    job_id = tomqueue.enqueue(Slow("busy", seconds=3))
    run_worker()
    wait_until(lambda: tq.count_runs("busy", "start") == 1)
    result = tq.cli("retry", str(job_id))
    assert result.returncode == 1
    assert f"job {job_id} is running on" in result.stderr
    wait_until(lambda: tq.job(job_id) is None, message="the run finishes undisturbed")
    assert tq.count_runs("busy", "start") == 1


def test_a_lock_whose_reply_was_lost_is_recognised_on_the_retry(tq):
    store = default_app().store
    job_id = tomqueue.enqueue(Record("mine"))
    row = store.admin.get(job_id)
    first = store.worker.lock_for_run(job_id, row.digest, "me pid:1 key:5 run:9", 5)
    assert first.admission == "run"
    # the reply was lost; the retry with the same attempt name finds its own lock
    again = store.worker.lock_for_run(job_id, row.digest, "me pid:1 key:5 run:9", 5)
    assert again.admission == "run_own_lock"
    other = store.worker.lock_for_run(job_id, row.digest, "me pid:1 key:5 run:10", 5)
    assert other.admission in ("orphaned", "drop_locked")  # a different attempt: not ours


def test_run_ones_delete_never_removes_run_twos_row(tq):
    store = default_app().store
    job_id = tomqueue.enqueue(Record("twice"))
    row = store.admin.get(job_id)
    store.worker.lock_for_run(job_id, row.digest, "w pid:1 key:5 run:1", 5)
    tq.sql("UPDATE tomqueue_jobs SET locked_by = 'w pid:1 key:5 run:2' WHERE id = %s", job_id)
    assert store.worker.delete_succeeded(job_id, "w pid:1 key:5 run:1") is False
    assert tq.job(job_id) is not None


def test_a_worker_releases_rows_locked_under_its_lease_with_no_run_in_flight(tq, run_worker):
    worker = run_worker()
    wait_until(lambda: worker.lease.held)
    # future first: no notification reaches the worker before the lock is planted
    job_id = tomqueue.enqueue(Slow("stranded", seconds=0), run_at=datetime.now(UTC) + HOUR)
    tq.sql(
        "UPDATE tomqueue_jobs SET locked_at = now(), locked_by = %s, lock_key = %s, "
        "run_at = now() WHERE id = %s",
        f"{worker.lease.name} run:999999",
        worker.lease.key,
        job_id,
    )
    wait_until(lambda: tq.job(job_id) is None, timeout=20, message="released and run")
    assert tq.count_runs("stranded", "start") == 1


def test_a_dead_holder_seen_by_a_notification_waits_for_the_orphan_grace(tq, run_worker):
    tomqueue.configure(orphan_grace=timedelta(seconds=3), sweep_interval=timedelta(seconds=0.5))
    job_id = tomqueue.enqueue(Slow("ghost", seconds=0))
    tq.sql(
        "UPDATE tomqueue_jobs SET locked_at = now(), locked_by = 'gone pid:1 key:77 run:1', "
        "lock_key = 77 WHERE id = %s",
        job_id,
    )
    run_worker()
    announce(tq, job_id)
    announced = time.monotonic()
    wait_until(lambda: tq.count_runs("ghost", "start") == 1, timeout=20)
    assert time.monotonic() - announced >= 2.5, "ran before the orphan grace"
    wait_until(lambda: tq.job(job_id) is None)
    assert tq.count_runs("ghost", "start") == 1


# -- sweeps -------------------------------------------------------------------------------


def test_a_lost_notification_is_found_behind_a_backlog(tq):
    tomqueue.configure(republish_after=timedelta(seconds=1))
    lost = tomqueue.enqueue(Record("lost"))
    tq.flush_announcements()
    tq.sql("UPDATE tomqueue_jobs SET released_at = now() - interval '1 minute' WHERE id = %s", lost)
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    connection.channel().queue_purge(f"{tq.prefix}.balance.normal")  # its message is lost
    connection.close()
    tomqueue.enqueue_many([Record(f"backlog{n}") for n in range(50)])
    tq.flush_announcements()
    time.sleep(1.5)  # the backlog is older than republish_after too
    report = Sweeper(default_app()).sweep()
    assert report.republished == 1  # the lost one, and none of the backlog
    assert tq.queue_depth(f"{tq.prefix}.balance.normal") == 51
    assert tq.scalar("SELECT released_at > now() - interval '5 s' FROM tomqueue_jobs "
                     "WHERE id = %s", lost)  # fmt: skip


def test_unannounced_rows_heal_with_workers_alone(tq, run_worker):
    job_id = tomqueue.enqueue(Record("never announced"))
    tq.flush_announcements()
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    connection.channel().queue_purge(f"{tq.prefix}.balance.normal")
    connection.close()
    tq.sql(
        "UPDATE tomqueue_jobs SET released_at = NULL, run_at = now() - interval '10 s' "
        "WHERE id = %s",
        job_id,
    )
    tomqueue.configure(sweep_interval=timedelta(seconds=0.5))
    run_worker()  # and no deferred manager
    wait_until(lambda: tq.job(job_id) is None, timeout=15, message="released by a worker sweep")


def test_republish_skips_running_jobs_and_never_marks_a_rescheduled_row(tq):
    store = default_app().store
    job_id = tomqueue.enqueue(Record("moved"))
    row = store.admin.get(job_id)
    tq.sql(
        "UPDATE tomqueue_jobs SET released_at = NULL, run_at = now() + interval '1 hour' "
        "WHERE id = %s",
        job_id,
    )
    store.admin.mark_republished([(job_id, row.run_at)])
    assert tq.job(job_id)["released_at"] is None  # the manager still owns it
    busy = tomqueue.enqueue(Record("busy"))
    tq.sql("UPDATE tomqueue_jobs SET locked_by = 'w run:1', locked_at = now() WHERE id = %s", busy)
    batches = list(store.admin.iter_due_pending())
    assert busy not in [r.id for batch in batches for r in batch]
