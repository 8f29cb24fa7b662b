from datetime import UTC, datetime, timedelta

import pytest

from tomqueue.error_text import MAX_ERROR_CHARS
from tomqueue.plans import FailureWrite, RetryPlan, plan_failure, plan_retry

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
