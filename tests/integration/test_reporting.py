"""The SQL in docs/reporting.md, run against the real schema.

The queries are read from the page's ```sql blocks, keyed by the heading above each, so
that the documentation and this test cannot drift apart: a query added to the page
without a check here fails, and so does a check whose query left the page.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.admin_rows import fail, insert, lock
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

PAGE = ROOT / "docs" / "reporting.md"


def queries() -> dict[str, str]:
    found, heading = {}, None
    for block in re.split(r"^(## .+)$", PAGE.read_text(), flags=re.M):
        if block.startswith("## "):
            heading = block[3:].strip()
            continue
        for sql in re.findall(r"```sql\n(.*?)```", block, flags=re.S):
            assert heading not in found, f"two queries under {heading!r}"
            found[heading] = sql
    return found


def age(tq, job_id, column, minutes):
    tq.sql(f"UPDATE tomqueue_jobs SET {column} = now() - make_interval(mins => %s) WHERE id = %s",
           minutes, job_id)  # fmt: skip


@pytest.fixture
def seeded(tq):
    """Rows in every state, of two classes and two queues."""
    rows = {
        "a_old": insert(class_name="app.A")[0],
        "a_new": insert(class_name="app.A")[0],
        "b": insert(class_name="app.B", queue="billing")[0],
        "future": insert(class_name="app.A", run_at=datetime.now(UTC) + timedelta(hours=1))[0],
        "failed1": insert(class_name="app.B")[0],
        "failed2": insert(class_name="app.B")[0],
        "failed3": insert(class_name="app.A")[0],
        "stuck": insert(class_name="app.Slow")[0],
        "busy": insert(class_name="app.Slow")[0],
    }
    age(tq, rows["a_old"], "run_at", 10)
    age(tq, rows["b"], "run_at", 3)
    fail(tq, rows["failed1"], rows["failed2"], error="KeyError: 'x'\nTraceback ...")
    fail(tq, rows["failed3"], error="ValueError: bad\nTraceback ...")
    lock(tq, "w pid:1 key:9", 9, rows["stuck"], rows["busy"])
    age(tq, rows["stuck"], "locked_at", 45)
    return rows


def run(tq, sql):
    return tq.sql(sql)


def check_backlog(tq, rows, result):
    by_class = {r[0]: r[1:] for r in result}
    assert set(by_class) == {"app.A", "app.B"}  # not the future, failed or running ones
    waiting, over_5m, oldest = by_class["app.A"]
    assert (waiting, over_5m) == (2, 1) and oldest >= timedelta(minutes=10)
    assert by_class["app.B"][:2] == (1, 0)


def check_failures(tq, rows, result):
    assert [(r[0], r[1]) for r in result] == [("KeyError: 'x'", 2), ("ValueError: bad", 1)]


def check_oldest_due(tq, rows, result):
    assert [(r[0], r[1]) for r in result] == [("billing", rows["b"]), ("default", rows["a_old"])]
    assert result[1][3] >= timedelta(minutes=10)


def check_long_running(tq, rows, result):
    assert [r[0] for r in result] == [rows["stuck"]]
    assert result[0][1] == "app.Slow" and result[0][4] >= timedelta(minutes=45)


def history(tq, class_name, outcome, finished_minutes_ago, seconds, waited_seconds):
    """A history row as the worker's final statement writes it."""
    tq.sql(
        """INSERT INTO tomqueue_job_history (job_id, class_name, enqueued_at, started_at,
            finished_at, outcome, duration_seconds, attempts, updated_at)
        SELECT coalesce(max(job_id), 0) + 1, %s,
            now() - make_interval(mins => %s, secs => %s + %s),
            now() - make_interval(mins => %s, secs => %s),
            now() - make_interval(mins => %s), %s, %s, 1, now()
        FROM tomqueue_job_history""",
        class_name, finished_minutes_ago, seconds, waited_seconds,
        finished_minutes_ago, seconds, finished_minutes_ago, outcome, seconds,
    )  # fmt: skip


@pytest.fixture
def ran(tq):
    """Jobs that ended: app.A fast and often, app.B slow, one old enough to be left out."""
    for _ in range(4):
        history(tq, "app.A", "succeeded", 5, 0.2, 1)
    history(tq, "app.A", "failed", 5, 0.1, 1)
    history(tq, "app.B", "succeeded", 130, 30.0, 60)
    history(tq, "app.B", "succeeded", 130, 50.0, 120)
    history(tq, "app.A", "succeeded", 60 * 30, 1.0, 1)  # 30 hours ago: outside the day


def check_throughput(tq, rows, result):
    # two hours with jobs (130 and 5 minutes ago are always in different hours), oldest first
    assert [(r[1], r[2]) for r in result] == [(2, 0), (4, 1)]
    assert result[0][0] < result[1][0]


def check_slowest(tq, rows, result):
    assert [r[0] for r in result] == ["app.B", "app.A"]
    assert result[0][1] == 2 and result[0][4] == 50.0 and result[1][1] == 5


def check_waiting(tq, rows, result):
    assert [r[0] for r in result] == ["app.B", "app.A"]
    assert result[0][3] == timedelta(seconds=120)


CHECKS = {
    "Backlog by class and age": check_backlog,
    "Failures by error": check_failures,
    "Oldest due job per queue": check_oldest_due,
    "Jobs running longer than 30 minutes": check_long_running,
}
HISTORY_CHECKS = {
    "Throughput per hour": check_throughput,
    "Slowest classes": check_slowest,
    "Time waiting before a worker took the job": check_waiting,
}


def test_every_query_on_the_page_has_a_check():
    assert set(queries()) == set(CHECKS) | set(HISTORY_CHECKS)


@pytest.mark.parametrize("heading", list(CHECKS))
def test_reporting_query(tq, seeded, heading):
    CHECKS[heading](tq, seeded, run(tq, queries()[heading]))


@pytest.mark.parametrize("heading", list(HISTORY_CHECKS))
def test_history_query(tq, ran, heading):
    HISTORY_CHECKS[heading](tq, None, run(tq, queries()[heading]))


def test_queries_survive_a_handler_that_is_not_json(tq, seeded):
    tq.sql("UPDATE tomqueue_jobs SET handler = 'not json at all' WHERE id = %s", seeded["a_new"])
    for sql in queries().values():
        run(tq, sql)
