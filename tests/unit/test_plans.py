from datetime import UTC, datetime, timedelta

import pytest

from tomqueue.error_text import MAX_ERROR_CHARS
from tomqueue.plans import (
    DeletePlan,
    FailureWrite,
    PriorityRelease,
    ReschedulePlan,
    RetryPlan,
    live_holder,
    plan_delete,
    plan_failure,
    plan_priority,
    plan_reschedule,
    plan_retry,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=400)


@pytest.mark.parametrize(
    ("attempts", "error", "retry_at", "expected"),
    [
        (1, "boom", NOW, FailureWrite(1, "boom", NOW, fail_now=False)),
        (3, "boom", LATER, FailureWrite(3, "boom", LATER, fail_now=False)),
        (3, "boom", None, FailureWrite(3, "boom", None, fail_now=True)),  # out of attempts
        (0, "", None, FailureWrite(0, "", None, fail_now=True)),
    ],
)
def test_failure_plan_table(attempts, error, retry_at, expected):
    assert plan_failure(attempts, error, retry_at) == expected


def test_failure_plan_stores_only_what_the_column_accepts():
    plan = plan_failure(1, "a\x00b" + "x" * (2 * MAX_ERROR_CHARS), NOW)
    assert "\x00" not in plan.last_error
    assert len(plan.last_error) <= MAX_ERROR_CHARS


@pytest.mark.parametrize(
    ("locked_by", "holder_alive", "expected"),
    [
        (None, False, RetryPlan(reset=True)),  # failed or pending: reset
        (None, True, RetryPlan(reset=True)),  # no holder, whatever the lease says
        ("w pid:1 key:5 run:2", False, RetryPlan(reset=True)),  # its worker died
        ("w pid:1 key:5 run:2", True, RetryPlan(reset=False, running_on="w pid:1 key:5 run:2")),
    ],
)
def test_retry_plan_table(locked_by, holder_alive, expected):
    assert plan_retry(locked_by, holder_alive) == expected


def test_a_reset_gives_fresh_attempts_and_a_clean_crash_record():
    plan = plan_retry(None, False)
    assert (plan.attempts, plan.crashes, plan.running_on) == (0, 0, None)


# -- operators' other actions -------------------------------------------------------------

LIVE = "w pid:1 key:5 run:2"


@pytest.mark.parametrize(
    ("locked_by", "holder_alive", "expected"),
    [
        (None, False, DeletePlan(delete=True)),
        (None, True, DeletePlan(delete=True)),
        (LIVE, False, DeletePlan(delete=True)),  # its worker died: nothing runs it
        (LIVE, True, DeletePlan(delete=False, running_on=LIVE)),
    ],
)
def test_delete_plan_table(locked_by, holder_alive, expected):
    assert plan_delete(locked_by, holder_alive) == expected


@pytest.mark.parametrize(
    ("locked_by", "alive", "failed", "at", "expected"),
    [
        # pending, moved later: waits for the deferred manager, attempts kept
        (
            None,
            False,
            False,
            timedelta(hours=1),
            ReschedulePlan(True, None, NOW + timedelta(hours=1)),
        ),
        # pending, moved to now (run now): due, announced now
        (None, False, False, timedelta(0), ReschedulePlan(True, None, NOW, due=True)),
        # an instant in the past is due too
        (
            None,
            False,
            False,
            NOW - timedelta(days=1),
            ReschedulePlan(True, None, NOW - timedelta(days=1), due=True),
        ),
        # failed: comes back with fresh attempts, as a retry
        (None, False, True, LATER, ReschedulePlan(True, None, LATER, fresh_attempts=True)),
        (
            None,
            False,
            True,
            timedelta(0),
            ReschedulePlan(True, None, NOW, due=True, fresh_attempts=True),
        ),
        # its worker died: the reschedule replaces the sweep's recovery
        (LIVE, False, False, timedelta(0), ReschedulePlan(True, None, NOW, due=True)),
        # a live worker runs it: refused, whatever the time
        (LIVE, True, False, timedelta(0), ReschedulePlan(False, running_on=LIVE)),
        (LIVE, True, False, LATER, ReschedulePlan(False, running_on=LIVE)),
    ],
)
def test_reschedule_plan_table(locked_by, alive, failed, at, expected):
    assert plan_reschedule(locked_by, alive, failed, at, NOW) == expected


def test_reschedule_refuses_a_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_reschedule(None, False, False, datetime(2026, 1, 1), NOW)


@pytest.mark.parametrize(
    ("locked_by", "failed", "due", "expected"),
    [
        (None, False, True, PriorityRelease.ANNOUNCE),  # its old notification is stale now
        (None, False, False, PriorityRelease.DEFER),  # the deferred manager announces anew
        (None, True, True, PriorityRelease.KEEP),  # failed: nothing to announce
        (None, True, False, PriorityRelease.KEEP),
        (LIVE, False, True, PriorityRelease.KEEP),  # running: the run goes on
    ],
)
def test_priority_plan_table(locked_by, failed, due, expected):
    assert plan_priority(locked_by, failed, due) == expected


@pytest.mark.parametrize(
    ("locked_by", "alive", "expected"),
    [(None, True, None), (LIVE, False, None), (LIVE, True, LIVE)],
)
def test_live_holder(locked_by, alive, expected):
    assert live_holder(locked_by, alive) == expected
