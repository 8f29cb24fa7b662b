"""The dashboard in headless Chromium: a person's clicks through retry, delete, bulk retry
and reschedule, checked in the jobs table afterwards; and that job data shown on a page
runs no script."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.admin_rows import fail, insert, live_lease
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


def confirm(page, button: str) -> None:
    """Press a button, then the same button on the confirmation page."""
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_selector(".confirm")
    page.locator(".confirm").get_by_role("button", name=button, exact=True).click()


def test_retry_from_the_job_page(tq, dashboard, page):
    job_id = insert()[0]
    fail(tq, job_id, error="Traceback (most recent call last):\nValueError: boom")
    page.goto(f"{dashboard}/jobs/{job_id}")
    assert page.locator("h1 .state").inner_text() == "failed"
    assert "ValueError: boom" in page.locator("pre.traceback").inner_text()
    confirm(page, "Retry")
    assert "will run again now" in page.locator(".notice.ok").inner_text()
    row = tq.job(job_id)
    assert row["failed_at"] is None and row["attempts"] == 0  # the last error stays, to read


def test_delete_from_the_job_page(tq, dashboard, page):
    job_id = insert()[0]
    page.goto(f"{dashboard}/jobs/{job_id}")
    confirm(page, "Delete")
    page.wait_for_url(f"{dashboard}/jobs?**")
    assert f"Job {job_id} was deleted" in page.locator(".notice.ok").inner_text()
    assert tq.job(job_id) is None


def test_a_running_job_is_refused_not_deleted(tq, dashboard, page):
    job_id = insert()[0]
    with live_lease(tq, job_id):
        page.goto(f"{dashboard}/jobs/{job_id}")
        confirm(page, "Delete")
        assert "running on a live worker" in page.locator(".notice.refused").inner_text()
        assert tq.job(job_id) is not None and tq.job(job_id)["locked_by"] is not None


def test_bulk_retry_of_the_filtered_failures(tq, dashboard, page):
    broken = insert(3, class_name="tests.jobs.AlwaysFails", label="b")
    other = insert(2)
    fail(tq, *broken, error="RuntimeError: upstream 502")
    fail(tq, *other, error="KeyError: 'x'")
    page.goto(f"{dashboard}/jobs")
    page.select_option("select[name=state]", "failed")
    page.fill("input[name=error]", "upstream")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**error=upstream**")
    assert page.locator("table.jobs tbody tr").count() == 3
    page.get_by_role("button", name="Retry all").click()
    assert page.locator(".match-count").inner_text() == "3"
    page.locator(".confirm").get_by_role("button", name="Retry all").click()
    assert "Retried 3 job(s)" in page.locator(".notice.ok").inner_text()
    for job_id in broken:
        assert tq.job(job_id)["failed_at"] is None
    for job_id in other:
        assert tq.job(job_id)["failed_at"] is not None


def test_reschedule_to_a_time(tq, dashboard, page):
    job_id = insert()[0]
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    page.goto(f"{dashboard}/jobs/{job_id}")
    page.fill("input[name=at]", when.strftime("%Y-%m-%dT%H:%M:%S"))
    confirm(page, "Reschedule")
    assert "was rescheduled" in page.locator(".notice.ok").inner_text()
    assert tq.job(job_id)["run_at"] == when
    assert page.locator("h1 .state").inner_text() == "scheduled"


def test_run_now_makes_a_scheduled_job_run(tq, dashboard, page, run_worker):
    import tomqueue
    from tests.jobs import Record

    job_id = tomqueue.enqueue(Record("later"), run_at=datetime.now(UTC) + timedelta(hours=5))
    run_worker()
    page.goto(f"{dashboard}/jobs/{job_id}")
    confirm(page, "Run now")
    wait_until(lambda: tq.job(job_id) is None, message="the job ran and its row was deleted")
    assert tq.count_runs("later") == 1
    page.goto(f"{dashboard}/jobs/{job_id}")  # the row is gone; its status says how it ended
    assert page.locator("h1 .state").inner_text() == "completed"
    assert tq.job(job_id) is None


def test_job_data_runs_no_script_on_any_page(tq, dashboard, page):
    job_id = insert(class_name="tests.jobs.Record", label=HOSTILE)[0]
    fail(tq, job_id, error=HOSTILE)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    for path in ("/", "/jobs", f"/jobs/{job_id}", "/jobs?state=failed"):
        page.goto(dashboard + path)
        assert page.title() != "pwned"
        assert page.locator("script").count() == 0
    page.goto(f"{dashboard}/jobs/{job_id}")
    assert HOSTILE in page.locator("pre.traceback").inner_text()  # shown as text
    assert dialogs == []
