"""TomQueueBackend on the real servers: enqueue through Django's connection inside the
caller's transaction, the worker and deferred manager as manage.py subprocesses, results
with Django's statuses, priorities, run_after and named queues, unregistered tasks, and a
worker whose database connection the server drops."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.django.conftest import DjangoEnv, stop_process, wait_until
from tests.django_project.testapp import hidden, tasks
from tomqueue.broker import Topology
from tomqueue.contrib.django import compat
from tomqueue.priority import PriorityLevel

pytestmark = pytest.mark.integration

Status = compat.TaskResultStatus


def normal_queue_depth(dj: DjangoEnv, level: PriorityLevel = PriorityLevel.NORMAL) -> int:
    """Messages waiting in a priority queue, once the backend's announcements are out."""
    app = compat.task_backends["default"].app
    assert app.announcer.flush(30)
    return dj.tq.queue_depth(Topology(dj.tq.prefix).queue_for(level))


def test_a_task_enqueued_runs_on_manage_py_tomqueue_worker_and_its_result_is_read(dj):
    worker = dj.worker("--concurrency", "2")
    result = tasks.add.enqueue("add", 2, 3)
    assert result.status == Status.READY and result.id.isdigit()
    assert result.args == ["add", 2, 3] and result.kwargs == {}
    done = dj.wait_finished(tasks.add, result.id)
    assert done.status == compat.SUCCESSFUL
    assert done.return_value == 5
    assert done.errors == [] and len(done.worker_ids) == 1 and done.attempts == 1
    assert done.args == ["add", 2, 3] and done.task.func is tasks.add.func
    assert done.enqueued_at <= done.started_at <= done.finished_at
    # the backend reads the same result; refresh() updates one taken while it waited
    assert compat.task_backends["default"].get_result(result.id).return_value == 5
    result.refresh()
    assert result.status == compat.SUCCESSFUL and result.return_value == 5
    # arguments and results are JSON by Django's rule: a tuple comes back as a list
    echoed = tasks.echo.enqueue("echo", (1, 2), nested={"k": (3,)})
    assert dj.wait_finished(tasks.echo, echoed.id).return_value == {
        "args": [[1, 2]],
        "kwargs": {"nested": {"k": [3]}},
    }
    # async task functions and tasks that take their context run too
    assert (
        dj.wait_finished(tasks.async_add, tasks.async_add.enqueue("async", 4, 5).id).return_value
        == 9
    )
    ctx = tasks.with_context.enqueue("ctx")
    assert dj.wait_finished(tasks.with_context, ctx.id).return_value == {"id": ctx.id, "attempt": 1}
    # a task that enqueues another from inside the worker (the worker's own connections)
    parent = dj.wait_finished(tasks.enqueue_child, tasks.enqueue_child.enqueue("parent").id)
    child = dj.wait_finished(tasks.add, parent.return_value)
    assert child.return_value == 5
    assert dj.tq.count_runs("parent-child") == 1
    assert stop_process(worker) == 0


def test_a_running_task_is_running_with_its_worker_and_start_time(dj):
    worker = dj.worker()
    result = tasks.wait_for_release.enqueue("held")
    running = wait_until(
        lambda: (r := tasks.wait_for_release.get_result(result.id)).status == Status.RUNNING and r,
        timeout=30,
        message="the task running",
    )
    assert running.started_at is not None and running.finished_at is None
    assert len(running.worker_ids) == 1 and "pid:" in running.worker_ids[0]
    with pytest.raises(ValueError, match="not finished"):
        _ = running.return_value
    dj.tq.sql("INSERT INTO test_runs (label, event) VALUES ('held', 'release')")
    assert dj.wait_finished(tasks.wait_for_release, result.id).return_value == "released"
    assert stop_process(worker) == 0


def test_a_rollback_writes_no_row_and_announces_nothing_a_commit_runs_the_task(dj):
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled = tasks.add.enqueue("rolled", 1, 1)
        # inside the transaction the task is READY, and nothing is announced yet
        assert tasks.add.get_result(rolled.id).status == Status.READY
        raise RuntimeError("roll back")
    with pytest.raises(compat.TaskResultDoesNotExist):
        tasks.add.get_result(rolled.id)
    assert dj.tq.pending_count() == 0
    assert normal_queue_depth(dj) == 0

    with transaction.atomic():
        kept = tasks.add.enqueue("kept", 1, 2)
        try:
            with transaction.atomic():  # a savepoint rolled back: only its task goes
                inner = tasks.add.enqueue("inner", 1, 3)
                raise RuntimeError("inner")
        except RuntimeError:
            pass
        assert normal_queue_depth(dj) == 0, "announced before the commit"
    assert dj.tq.job(int(kept.id)) is not None and dj.tq.job(int(inner.id)) is None
    assert normal_queue_depth(dj) == 1, "the commit announces exactly the kept task"

    worker = dj.worker()
    assert dj.wait_finished(tasks.add, kept.id).return_value == 3
    assert dj.tq.count_runs("kept") == 1
    assert dj.tq.count_runs("rolled") == 0 and dj.tq.count_runs("inner") == 0
    assert stop_process(worker) == 0


def test_priority_maps_onto_tomqueue_levels_higher_django_priority_first(dj):
    backend = compat.task_backends["default"]
    urgent = tasks.add.using(priority=100).enqueue("urgent", 0, 0)
    normal = tasks.add.enqueue("normal", 0, 0)
    low = tasks.add.using(priority=-5).enqueue("low", 0, 0)
    bulk = tasks.add.using(priority=-50).enqueue("bulk", 0, 0)
    rows = {
        name: dj.tq.job(int(r.id))["priority"]
        for name, r in [("urgent", urgent), ("normal", normal), ("low", low), ("bulk", bulk)]
    }
    assert rows == {"urgent": -100, "normal": 0, "low": 5, "bulk": 50}
    for level in PriorityLevel:
        assert normal_queue_depth(dj, level) == 1, level
    # the worker drains the levels in order: HIGH, NORMAL, LOW, BULK
    worker = dj.worker()
    for r in (urgent, normal, low, bulk):
        dj.wait_finished(tasks.add, r.id)
    order = [label for (label,) in dj.tq.sql("SELECT label FROM test_runs ORDER BY id")]
    assert order == ["urgent", "normal", "low", "bulk"]
    # the result names the task as enqueued
    assert backend.get_result(urgent.id).task.priority == 100
    with pytest.raises(compat.InvalidTask):
        tasks.add.using(priority=101)
    assert stop_process(worker) == 0


def test_run_after_is_honoured_by_manage_py_tomqueue_deferred(dj):
    deferred = dj.manage("tomqueue_deferred")
    worker = dj.worker()
    due = timezone.now() + timedelta(seconds=3)
    later = tasks.add.using(run_after=due).enqueue("later", 1, 1)
    assert tasks.add.get_result(later.id).status == Status.READY
    assert dj.tq.job(int(later.id))["run_at"] == due
    time.sleep(1.5)
    assert dj.tq.count_runs("later") == 0, "ran before its run_after"
    done = dj.wait_finished(tasks.add, later.id, timeout=30)
    assert done.started_at >= due
    assert stop_process(worker) == 0 and stop_process(deferred) == 0


def test_queue_name_is_a_named_queue_served_only_by_workers_given_it(dj):
    default_only = dj.worker("--queues", "default")
    billed = tasks.bill.enqueue("bill")  # @task(queue_name="billing")
    reported = tasks.add.using(queue_name="reports").enqueue("report", 1, 1)
    plain = tasks.add.enqueue("plain", 1, 1)
    assert dj.tq.job(int(billed.id))["queue"] == "billing"
    assert dj.tq.job(int(plain.id))["queue"] is None  # Django's "default" queue
    dj.wait_finished(tasks.add, plain.id)
    time.sleep(1)
    assert tasks.bill.get_result(billed.id).status == Status.READY
    assert dj.tq.count_runs("bill") == 0 and dj.tq.count_runs("report") == 0
    billing = dj.worker("--queues", "billing")
    assert dj.wait_finished(tasks.bill, billed.id).return_value == "billed"
    assert tasks.add.get_result(reported.id).status == Status.READY
    # a queue the backend's QUEUES does not list is refused at enqueue, as Django does
    with pytest.raises(compat.InvalidTask):
        tasks.add.using(queue_name="elsewhere")
    assert stop_process(default_only) == 0 and stop_process(billing) == 0


def test_a_failing_task_is_failed_with_its_error(dj):
    worker = dj.worker()
    failed = dj.wait_finished(tasks.explode, tasks.explode.enqueue("boom", "it broke").id)
    assert failed.status == Status.FAILED
    [error] = failed.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert error.exception_class is ValueError
    assert "ValueError: it broke" in error.traceback and "Traceback" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        _ = failed.return_value
    assert failed.finished_at is not None and failed.attempts == 1
    # no retries, as with Django's own backends: it ran once and is kept as failed
    assert dj.tq.count_runs("boom") == 1
    assert dj.tq.job(int(failed.id))["failed_at"] is not None
    # a return value that is not JSON fails the task, as Django's rule says
    bad = dj.wait_finished(tasks.not_json, tasks.not_json.enqueue("set").id)
    assert bad.status == Status.FAILED and bad.errors[0].exception_class is TypeError
    assert stop_process(worker) == 0


def test_a_task_the_worker_has_not_registered_fails_clearly_and_is_never_imported(dj, tmp_path):
    mark = tmp_path / "imported"
    worker = dj.worker(TESTAPP_IMPORT_MARK=str(mark))
    result = hidden.hidden.enqueue("hidden")  # this process has it; the worker does not
    failed = dj.wait_finished(hidden.hidden, result.id)
    assert failed.status == Status.FAILED
    [error] = failed.errors
    assert error.exception_class_path.endswith("UnknownTaskError")
    row = dj.tq.job(int(result.id))
    assert row["failed_at"] is not None, "kept as failed: nothing lost"
    assert (
        "task 'tests.django_project.testapp.hidden.hidden' is not registered" in row["last_error"]
    )
    assert not mark.exists(), "the worker imported the module a row named"
    # the row is kept: once the task is registered, `tomqueue retry` runs it
    assert stop_process(worker) == 0


def test_a_worker_survives_the_server_dropping_its_django_connection(dj):
    worker = dj.worker()
    first = dj.wait_finished(tasks.backend_pid, tasks.backend_pid.enqueue("before").id)
    assert first.status == compat.SUCCESSFUL
    old_pid = first.return_value
    # the worker keeps its connection between tasks (CONN_MAX_AGE): the server ends it,
    # as a database restart would (only this test database's connection, not the server)
    killed = dj.tq.scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE pid = %s AND datname = current_database() AND application_name = %s) t",
        old_pid,
        dj.application_name,
    )
    assert killed == 1
    wait_until(
        lambda: not dj.tq.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", old_pid),
        message="the connection gone",
    )
    second = dj.wait_finished(tasks.backend_pid, tasks.backend_pid.enqueue("after").id)
    assert second.status == compat.SUCCESSFUL, second.errors
    assert second.return_value != old_pid
    assert dj.tq.count_runs("after") == 1
    assert stop_process(worker) == 0


def test_processes_supervise_children_that_set_django_up(dj):
    supervisor = dj.worker("--processes", "2", "--concurrency", "2")
    results = [tasks.add.enqueue(f"p{n}", n, n) for n in range(20)]
    for n, r in enumerate(results):
        assert dj.wait_finished(tasks.add, r.id).return_value == 2 * n
    pids = {pid for (pid,) in dj.tq.sql("SELECT DISTINCT pid FROM test_runs")}
    assert supervisor.pid not in pids and 1 <= len(pids) <= 2
    assert stop_process(supervisor) == 0


def test_get_result_of_an_unknown_id(dj):
    with pytest.raises(compat.TaskResultDoesNotExist):
        tasks.add.get_result("999999")
    with pytest.raises(compat.TaskResultDoesNotExist):
        tasks.add.get_result("not-a-number")


def test_a_bad_backend_alias_is_a_clear_command_error(dj):
    proc = dj.manage("tomqueue_worker", "--backend", "nope")
    assert proc.wait(60) != 0


def test_tomqueue_worker_with_the_django_app_module_runs_tasks_too(dj):
    worker = dj.tq.spawn(
        "worker",
        "--app",
        "tomqueue.contrib.django.worker",
        env=dj.environ(DJANGO_SETTINGS_MODULE="tests.django_project.settings"),
    )
    done = dj.wait_finished(tasks.add, tasks.add.enqueue("plain-cli", 20, 22).id)
    assert done.return_value == 42
    assert stop_process(worker) == 0


def test_manage_py_tomqueue_runs_the_operator_cli_on_the_backends_database(dj):
    import subprocess
    import sys

    from tests.django.conftest import MANAGE

    failed = dj.wait_finished(tasks.explode, (dj.worker(), tasks.explode.enqueue("cli", "x"))[1].id)

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        # the settings build DATABASES from TOMQUEUE_DATABASE_URL; the backend then gives
        # tomqueue the URL it derives from DATABASES
        env = dj.environ()
        return subprocess.run(
            [sys.executable, str(MANAGE), "tomqueue", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    migrate = manage("migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert "schema at revision" in migrate.stdout
    listed = manage("jobs", "--failed", "--json")
    assert listed.returncode == 0, listed.stderr
    assert failed.id in listed.stdout and "DjangoTask" in listed.stdout


def test_without_use_tz_naive_times_are_the_projects_time_zone(dj):
    from datetime import UTC, datetime

    from django.test import override_settings

    with override_settings(USE_TZ=False, TIME_ZONE="Europe/London"):
        due = datetime(2031, 7, 1, 12, 0)  # naive: London time, 11:00 UTC in summer
        later = tasks.add.using(run_after=due).enqueue("naive", 1, 1)
        now = tasks.add.enqueue("naive-now", 1, 1)
    assert dj.tq.job(int(later.id))["run_at"] == datetime(2031, 7, 1, 11, 0, tzinfo=UTC)
    # both rows were announced: the due one to its queue, the future one to the deferred
    # manager (an announcement needs the rows' times, read back through Django's cursor)
    assert normal_queue_depth(dj) == 1
    worker = dj.worker()
    assert dj.wait_finished(tasks.add, now.id).return_value == 2
    assert tasks.add.get_result(later.id).status == Status.READY
    assert stop_process(worker) == 0


def test_manage_py_commands_serve_prometheus_metrics_summed_over_their_processes(dj):
    from tests.integration.test_metrics import free_port, scrape, value

    worker_port, deferred_port = free_port(), free_port()
    supervisor = dj.worker(
        "--processes", "2", "--concurrency", "2", "--metrics-port", str(worker_port)
    )
    deferred = dj.manage("tomqueue_deferred", "--metrics-port", str(deferred_port))
    results = [tasks.add.enqueue(f"m{n}", n, 1) for n in range(11)]
    later = tasks.add.using(run_after=timezone.now() + timedelta(seconds=1))
    results.append(later.enqueue("m-later", 0, 1))  # released by the deferred manager
    for r in results:
        dj.wait_finished(tasks.add, r.id)
    labels = {"class": "tomqueue.contrib.django.job.DjangoTask", "queue": "default"}

    def counted():
        values = scrape(worker_port)
        done = values and value(
            values, "tomqueue_jobs_completed_total", **labels, outcome="succeeded"
        )
        return values if done == 12 else None

    values = wait_until(counted, timeout=30, message="12 successes in the summed metrics")
    assert value(values, "tomqueue_jobs", state="queued", queue="default") == 0
    # (it may also release a row it found committed but not yet announced: never fewer)
    wait_until(
        lambda: value(
            scrape(deferred_port) or {}, "tomqueue_release_lateness_seconds_count", queue="default"
        ),
        timeout=30,
        message="the deferred manager's release in its metrics",
    )
    assert stop_process(supervisor) == 0
    assert stop_process(deferred) == 0
