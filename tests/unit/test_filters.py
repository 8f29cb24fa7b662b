"""Filter -> SQL parameters, states of rows, and the admin service's pure helpers."""

from datetime import UTC, datetime, timedelta

import pytest

from tomqueue.admin_results import job_dict, stats_from, worker_name, workers_from
from tomqueue.cli.overview import duration
from tomqueue.cli.table import cut, first_line, render
from tomqueue.filters import Filter, State, filter_params, like_escape, state_of
from tomqueue.priority import PriorityLevel
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.values import HeldRow, Lease, StateCounts, StatsRow

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NO_FILTER = {
    "class_name": None,
    "class_suffix": None,
    "queue": None,
    "queue_default": False,
    "error": None,
    "priority": None,
}


@pytest.mark.parametrize(
    ("where", "changes"),
    [
        (Filter(), {}),
        (Filter(state=State.FAILED), {}),  # the state picks the statement, not a parameter
        (
            Filter(class_name="SendInvoice"),
            {"class_name": "SendInvoice", "class_suffix": "%.SendInvoice"},
        ),
        (
            Filter(class_name="my_app.Job"),
            {"class_name": "my_app.Job", "class_suffix": "%.my\\_app.Job"},
        ),
        (Filter(queue="billing"), {"queue": "billing"}),
        (Filter(queue="default"), {"queue": "default", "queue_default": True}),
        (Filter(error="100% _done_"), {"error": "%100\\% \\_done\\_%"}),
        (Filter(error="C:\\temp"), {"error": "%C:\\\\temp%"}),
        (Filter(priority=-5), {"priority": -5}),
        (Filter(priority=0), {"priority": 0}),
    ],
)
def test_filter_params_table(where, changes):
    assert filter_params(where) == NO_FILTER | changes


@pytest.mark.parametrize(
    ("where", "key"),
    [
        (Filter(), "all"),
        (Filter(state=State.QUEUED), "queued"),
        (Filter(state="failed"), "failed"),  # a string is taken for its State
        (Filter(state=State.PENDING), "pending"),
    ],
)
def test_each_state_has_its_statements(where, key):
    assert where.statement_key == key
    for statements in (sql.LIST_PAGE, sql.COUNT_WHERE, sql.SELECT_BATCH_FOR_ACTION):
        assert key in statements
    assert "OFFSET" not in sql.LIST_PAGE[key] and "j.id > :after" in sql.LIST_PAGE[key]


@pytest.mark.parametrize(
    "bad",
    [
        {"state": "sleeping"},
        {"class_name": ""},
        {"queue": ""},
        {"priority": 2**31},
        {"priority": True},
        {"priority": "1"},
    ],
)
def test_bad_filters_are_refused(bad):
    with pytest.raises(ValueError):
        Filter(**bad)


def test_describe_reads_as_the_command_line():
    assert Filter().describe() == "all jobs"
    assert Filter(state=State.FAILED, class_name="X", priority=3).describe() == (
        "--state failed --class X --priority 3"
    )


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("plain", "plain"), ("a%b", "a\\%b"), ("a_b", "a\\_b"), ("a\\b", "a\\\\b")],
)
def test_like_escape(text, pattern):
    assert like_escape(text) == pattern


def row(**changes):
    base = dict(
        id=1, priority=0, attempts=0, handler='{"class":"app.jobs.Send","state":{},"v":1}',
        last_error=None, run_at=NOW, locked_at=None, locked_by=None, failed_at=None,
        queue=None, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    return JobSnapshot(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, State.QUEUED),  # due at exactly now
        ({"run_at": NOW - timedelta(hours=1)}, State.QUEUED),
        ({"run_at": NOW + timedelta(seconds=1)}, State.SCHEDULED),
        ({"locked_by": "w run:1", "locked_at": NOW}, State.RUNNING),
        ({"failed_at": NOW}, State.FAILED),
        ({"failed_at": NOW, "run_at": NOW + timedelta(days=1)}, State.FAILED),
    ],
)
def test_state_of_table(changes, state):
    assert state_of(row(**changes), NOW) is state


def test_job_dict_holds_everything_json_ready():
    details = job_dict(row(last_error="Boom\nTraceback ...", queue="billing"), NOW)
    assert details["class"] == "app.jobs.Send" and details["state"] == "queued"
    assert details["last_error"] == "Boom\nTraceback ..." and details["run_at"] == NOW.isoformat()
    assert details["queue"] == "billing" and details["failed_at"] is None


@pytest.mark.parametrize(
    ("locked_by", "name"),
    [
        ("host pid:1 key:2 run:3", "host pid:1 key:2"),
        ("host pid:1 key:2", "host pid:1 key:2"),
        ("odd run:x", "odd run:x"),
    ],
)
def test_worker_name(locked_by, name):
    assert worker_name(locked_by) == name


def test_stats_are_grouped_and_priorities_mapped_to_levels():
    def stats_row(group, key, queued=0, failed=0, oldest=None):
        return StatsRow(group, key, StateCounts(queued=queued, failed=failed), oldest, NOW)

    rows = [
        stats_row("total", None, queued=6, failed=1, oldest=NOW - timedelta(minutes=5)),
        stats_row("priority", -1, queued=1),
        stats_row("priority", 0, queued=2),
        stats_row("priority", 10, queued=3, failed=1),
        stats_row("queue", None, queued=4),
        stats_row("queue", "default", queued=1),  # one queue to a worker
        stats_row("queue", "billing", queued=1, failed=1),
        stats_row("class", "app.A", queued=6, failed=1),
    ]
    stats = stats_from(rows, {})
    assert stats.totals.total == 7 and stats.oldest_queued_age == timedelta(minutes=5)
    assert {k: v.queued for k, v in stats.by_level.items()} == {
        "high": 1,
        "normal": 2,
        "low": 0,
        "bulk": 3,
    }
    assert stats.by_queue["default"].queued == 5 and stats.by_queue["billing"].failed == 1
    mapped = stats_from(rows, {10: PriorityLevel.HIGH})
    assert mapped.by_level["high"].queued == 3 and mapped.by_level["normal"].queued == 3
    as_json = stats.to_dict()
    assert (as_json["queued"], as_json["failed"], as_json["oldest_queued_age_seconds"]) == (
        6,
        1,
        300,
    )
    assert as_json["by_priority"]["10"]["total"] == 4


def test_table_cuts_the_widest_flexible_column_to_fit():
    lines = render(["id", "class", "error"], [["1", "x" * 30, "e" * 50]], flexible=(1, 2), width=40)
    assert all(len(line) <= 40 for line in lines)
    # the two long columns are cut to the same width, not one of them to nothing
    assert lines[1] == "1   " + "x" * 16 + "…  " + "e" * 16 + "…"
    assert render(["id", "c"], [["12345", "x" * 200]], flexible=(1,))[1].endswith("x")  # no width


def test_small_text_helpers():
    assert cut("abcdef", 4) == "abc…" and cut("abc", 4) == "abc"
    assert (
        first_line("ValueError: boom\n  File ...") == "ValueError: boom" and first_line(None) == ""
    )
    assert [duration(timedelta(seconds=s)) for s in (9, 252, 7500, 273600)] == [
        "9s",
        "4m12s",
        "2h5m",
        "3d4h",
    ]


def test_the_package_face_offers_the_admin_names():
    import tomqueue
    from tomqueue.admin import Admin

    assert tomqueue.Admin is Admin and tomqueue.Filter is Filter


def test_workers_are_grouped_by_lease_idle_and_dead_ones_included():
    def held(job_id, key, alive, by="w pid:1 key:{key} run:{job_id}"):
        return HeldRow(job_id, key, by.format(key=key, job_id=job_id), NOW - timedelta(seconds=job_id),
                       "app.A", None, 0, 1, alive)  # fmt: skip

    leases = {5: Lease(5, NOW, "127.0.0.1"), 8: Lease(8, NOW, None)}
    found = workers_from(leases, [held(1, 5, True), held(2, 5, True), held(3, 9, False)], NOW)
    assert [(w.key, w.name, w.alive, [j.job_id for j in w.jobs]) for w in found] == [
        (5, "w pid:1 key:5", True, [1, 2]),
        (8, "key:8", True, []),  # idle: no rows, so no name but its key
        (9, "w pid:1 key:9", False, [3]),  # dead: listed while rows are locked under it
    ]
    assert found[0].jobs[1].running_for == timedelta(seconds=2)
