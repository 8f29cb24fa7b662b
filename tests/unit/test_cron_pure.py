"""Cron's pure parts from tables: fire times (time zones, daylight saving), the decision
a manager takes, and the checks on a class's schedule."""

from datetime import UTC, datetime

import pytest

import tomqueue
from tomqueue.cron import CronSchedule, Fire, fire_decision


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone", "now", "latest", "following"),
    [
        (
            "*/5 * * * *",
            "UTC",
            utc(2026, 1, 1, 12, 5),
            utc(2026, 1, 1, 12, 5),
            utc(2026, 1, 1, 12, 10),
        ),
        (
            "*/5 * * * *",
            "UTC",
            utc(2026, 1, 1, 12, 7, 30),
            utc(2026, 1, 1, 12, 5),
            utc(2026, 1, 1, 12, 10),
        ),
        (
            "*/5 * * * *",
            "UTC",
            datetime(2026, 1, 1, 12, 4, 59, 999999, tzinfo=UTC),
            utc(2026, 1, 1, 12),
            utc(2026, 1, 1, 12, 5),
        ),
        (
            "* * * * * */2",
            "UTC",
            datetime(2026, 1, 1, 12, 0, 3, 500000, tzinfo=UTC),
            utc(2026, 1, 1, 12, 0, 2),
            utc(2026, 1, 1, 12, 0, 4),
        ),
        # 01:30 in London: GMT in winter, BST (UTC+1) in summer
        (
            "30 1 * * *",
            "Europe/London",
            utc(2026, 1, 10, 12),
            utc(2026, 1, 10, 1, 30),
            utc(2026, 1, 11, 1, 30),
        ),
        (
            "30 1 * * *",
            "Europe/London",
            utc(2026, 7, 10, 12),
            utc(2026, 7, 10, 0, 30),
            utc(2026, 7, 11, 0, 30),
        ),
        (
            "0 9 * * 1",
            "America/New_York",
            utc(2026, 12, 5, 12),
            utc(2026, 11, 30, 14),
            utc(2026, 12, 7, 14),
        ),
    ],
)
def test_fire_times_in_their_time_zone(expression, timezone, now, latest, following):
    schedule = CronSchedule("x", expression, timezone)
    assert schedule.latest_fire(now) == latest
    assert schedule.next_fire(now) == following
    assert schedule.latest_fire(now).tzinfo == UTC


@pytest.mark.parametrize(
    ("latest", "last", "decision"),
    [
        (utc(2026, 1, 1, 12), None, Fire.BASELINE),  # first sight: earlier fires never run
        (utc(2026, 1, 1, 12), utc(2026, 1, 1, 12), Fire.NOTHING),  # fired already
        (utc(2026, 1, 1, 12, 5), utc(2026, 1, 1, 12), Fire.RUN),  # the next one
        (utc(2026, 1, 1, 18), utc(2026, 1, 1, 12), Fire.RUN),  # after an outage: once
        (utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 5), Fire.NOTHING),  # a clock behind
    ],
)
def test_the_decision_on_the_latest_fire_time(latest, last, decision):
    assert fire_decision(latest, last) is decision


@pytest.mark.parametrize(
    ("attrs", "error", "match"),
    [
        ({"cron": "* * * *"}, TypeError, "five fields"),
        ({"cron": 5}, TypeError, "five fields"),
        ({"cron": "61 * * * *"}, ValueError, "not a valid crontab"),
        ({"cron": "* * * * *", "cron_timezone": "Mars/Olympus"}, ValueError, "no known time zone"),
        ({"cron": "* * * * *", "cron_timezone": ""}, TypeError, "time zone name"),
    ],
)
def test_a_bad_schedule_fails_at_class_definition(attrs, error, match):
    with pytest.raises(error, match=match):
        type("BadCron", (tomqueue.Job,), {"perform": lambda self: None, **attrs})


def test_a_cron_class_must_be_buildable_with_no_arguments():
    def needs(self, account: int) -> None:
        self.account = account

    with pytest.raises(TypeError, match="buildable with no arguments"):
        type("NeedsArgs", (tomqueue.Job,), {"cron": "* * * * *", "__init__": needs})
