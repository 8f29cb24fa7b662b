"""The operator CLI over the admin service: jobs, show, retry, delete, reschedule, run-now,
priority, stats and workers, in-process with CliRunner and as real subprocesses."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

import tests.jobs  # noqa: F401  (registers the classes an in-process worker runs)
from tests.admin_rows import fail, insert, live_lease, lock
from tests.conftest import wait_until
from tomqueue.cli import main

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_jobs_filters_pages_and_json(tq):
    a = insert(3, class_name="app.jobs.Invoice", queue="billing")
    b = insert(2, class_name="app.jobs.Report")
    fail(tq, b[0], error="KeyError: 'customer'\nTraceback (most recent call last): ...")
    listed = cli("jobs", "--class", "Invoice")
    assert listed.exit_code == 0, listed.output
    assert all(str(i) in listed.output for i in a) and "Report" not in listed.output
    assert "3 of 3 job(s) shown (--class Invoice)" in listed.output
    failed = cli("jobs", "--failed")
    assert "KeyError: 'customer'" in failed.output and "Traceback" not in failed.output
    assert cli("jobs", "--state", "failed").output == failed.output
    assert cli("jobs", "--failed", "--state", "queued").exit_code == 2
    assert cli("jobs", "--state", "sleeping").exit_code == 2
    page = cli("jobs", "--limit", "2")
    assert f"next page: --after {a[1]}" in page.output
    rest = json.loads(cli("jobs", "--after", a[1], "--json").output)
    assert [job["id"] for job in rest["jobs"]] == [a[2], *b] and rest["next_after"] is None
    assert rest["jobs"][1]["state"] == "failed" and rest["jobs"][1]["last_error"].startswith(
        "KeyError"
    )
    by_error = json.loads(cli("jobs", "--error", "customer", "--json").output)
    assert [job["id"] for job in by_error["jobs"]] == [b[0]]
    assert json.loads(cli("jobs", "--queue", "default", "--json").output)["jobs"][0]["id"] == b[0]


def test_show_prints_everything_including_the_traceback(tq):
    job_id = insert(class_name="app.jobs.Invoice", invoice=42)[0]
    fail(tq, job_id, error="ValueError: boom\nTraceback (most recent call last):\n  File x")
    shown = cli("show", job_id)
    assert shown.exit_code == 0, shown.output
    assert "app.jobs.Invoice" in shown.output and "failed" in shown.output
    assert "Traceback (most recent call last):\n  File x" in shown.output
    assert '"invoice":42' in shown.output and "0 (normal)" in shown.output
    details = json.loads(cli("show", job_id, "--json").output)
    assert (details["id"], details["state"], details["attempts"]) == (job_id, "failed", 3)
    assert details["last_error"].endswith("File x")
    missing = cli("show", 10**9)
    assert missing.exit_code == 1 and "no job with id" in missing.output


def test_retry_and_delete_of_several_ids(tq):
    ids = insert(3)
    fail(tq, *ids)
    retried = cli("retry", ids[0], ids[1])
    assert retried.exit_code == 0, retried.output
    assert retried.output.count("is pending again and announced") == 2
    assert tq.job(ids[0])["failed_at"] is None and tq.job(ids[2])["failed_at"] is not None
    partly = cli("delete", ids[2], 10**9)
    assert partly.exit_code == 1 and f"job {ids[2]} (tests.jobs.Record) deleted" in partly.output
    assert "no job with id 1000000000" in partly.output and tq.job(ids[2]) is None


def test_usage_errors_exit_2(tq):
    for args in (
        ["retry"],
        ["retry", "1", "--all"],
        ["retry", "1", "--class", "X"],
        ["delete"],
        ["delete", "abc"],
        ["reschedule", "1"],
        ["reschedule", "1", "--in", "5", "--at", "2030-01-01T00:00:00Z"],
        ["reschedule", "1", "--at", "next tuesday"],
        ["reschedule", "1", "--in", "-5"],
        ["priority", "1", "2147483648"],
        ["run-now"],
    ):
        assert cli(*args).exit_code == 2, args


def test_retry_all_dry_runs_then_acts_with_yes(tq):
    failed = insert(4, class_name="app.A")
    fail(tq, *failed)
    other = insert(2, class_name="app.B")
    fail(tq, *other)
    insert(3, class_name="app.A")  # pending: retry --all defaults to --state failed
    dry = cli("retry", "--all", "--class", "A")
    assert dry.exit_code == 0, dry.output
    assert "would retry 4 job(s) matching --state failed --class A" in dry.output
    assert all(tq.job(i)["failed_at"] is not None for i in failed)  # nothing done
    done = cli("retry", "--all", "--class", "A", "--yes")
    assert done.exit_code == 0, done.output
    assert "retried 4 job(s) matching --state failed --class A" in done.output
    assert all(tq.job(i)["failed_at"] is None for i in failed)
    assert all(tq.job(i)["failed_at"] is not None for i in other)


def test_delete_all_skips_running_jobs_and_exits_1(tq):
    doomed = insert(5, class_name="app.Old", queue="legacy")
    running = insert(1, class_name="app.Old", queue="legacy")
    keep = insert(2, class_name="app.Old")
    with live_lease(tq, *running) as worker:
        dry = cli("delete", "--all", "--queue", "legacy")
        assert dry.exit_code == 0 and "would delete 6 job(s) matching --queue legacy" in dry.output
        assert "1 of them locked by a worker" in dry.output
        assert tq.pending_count() == 8
        done = cli("delete", "--all", "--queue", "legacy", "--yes")
        assert done.exit_code == 1, done.output
        assert "deleted 5 job(s)" in done.output
        assert (
            f"skipped 1 job(s) a live worker is running: {running[0]} (on {worker}" in done.output
        )
    assert all(tq.job(i) is None for i in doomed) and tq.job(running[0]) is not None
    assert all(tq.job(i) is not None for i in keep)


def test_a_running_job_is_refused_by_every_action(tq):
    job_id = insert()[0]
    with live_lease(tq, job_id) as worker:
        for args in (
            ["retry", job_id],
            ["delete", job_id],
            ["run-now", job_id],
            ["reschedule", job_id, "--in", "60"],
        ):
            result = cli(*args)
            assert result.exit_code == 1, args
            assert f"job {job_id} is running on {worker} run:{job_id}" in result.output
        # as a real process too: what a script sees
        real = tq.cli("retry", str(job_id))
        assert real.returncode == 1 and f"job {job_id} is running on {worker}" in real.stderr
        assert tq.job(job_id)["locked_by"] == f"{worker} run:{job_id}"


def test_reschedule_run_now_and_priority(tq, run_worker):
    job_id = insert()[0]
    later = cli("reschedule", job_id, "--in", "3600")
    assert later.exit_code == 0 and "runs at" in later.output, later.output
    assert tq.job(job_id)["run_at"] > datetime.now(UTC) + timedelta(minutes=59)
    at = cli("reschedule", job_id, "--at", "2031-02-03T04:05:06")  # naive: UTC
    assert at.exit_code == 0 and "2031-02-03T04:05:06+00:00" in at.output, at.output
    assert cli("reschedule", job_id, "--at", "2031-02-03T04:05:06+01:00").exit_code == 0
    assert tq.job(job_id)["run_at"] == datetime(2031, 2, 3, 3, 5, 6, tzinfo=UTC)
    priority = cli("priority", job_id, "-5")
    assert priority.exit_code == 0 and "has priority -5 (high)" in priority.output
    assert cli("priority", 10**9, "1").exit_code == 1
    run_worker()
    now = cli("run-now", job_id)
    assert now.exit_code == 0 and "is due now and announced" in now.output, now.output
    wait_until(lambda: tq.job(job_id) is None, message="run now ran it")


def test_stats_and_workers(tq):
    insert(2, class_name="app.A", queue="billing")
    failed = insert(1, class_name="app.B", priority=10)
    fail(tq, *failed)
    running = insert(1, class_name="app.C")
    lock(tq, "dead pid:1 key:77", 77, *running)
    stats = cli("stats")
    assert stats.exit_code == 0, stats.output
    assert "queued 2  scheduled 0  running 1  failed 1  total 4" in stats.output
    assert "the oldest queued job has waited" in stats.output
    assert "billing" in stats.output and "app.B" in stats.output and "bulk" in stats.output
    as_json = json.loads(cli("stats", "--json").output)
    assert (as_json["queued"], as_json["failed"], as_json["by_class"]["app.A"]["queued"]) == (
        2,
        1,
        2,
    )
    with live_lease(tq, insert()[0], key=4242) as worker:
        listed = cli("workers")
        assert listed.exit_code == 0, listed.output
        assert worker in listed.output and "alive" in listed.output
        assert "dead pid:1 key:77" in listed.output and "dead" in listed.output
        assert "1 live worker(s), running 1 job(s)" in listed.output
        found = json.loads(cli("workers", "--json").output)
        assert {(w["key"], w["alive"]) for w in found} == {(77, False), (4242, True)}


def test_stats_json_as_a_subprocess(tq):
    insert(3)
    result = tq.cli("stats", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["queued"] == 3
    empty = tq.cli("workers")
    assert empty.returncode == 0 and "no worker is running" in empty.stdout


def test_show_includes_the_status_and_progress_the_job_reported(tq):
    job_id = insert()[0]
    tq.sql(
        "INSERT INTO tomqueue_job_history (job_id, progress_value, progress_total, fields,"
        ' updated_at) VALUES (%s, 4, 10, \'{"step": "B"}\', now())',
        job_id,
    )
    shown = cli("show", job_id)
    assert shown.exit_code == 0, shown.output
    assert "queued, 4/10 (40%), step='B'" in shown.output
    details = json.loads(cli("show", job_id, "--json").output)
    assert details["status"] == {
        "id": job_id,
        "state": "queued",
        "progress": 0.4,
        "value": 4,
        "total": 10,
        "step": "B",
    }
