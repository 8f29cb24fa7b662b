"""Cron schedules: a job class's ``cron`` expression, its fire times, and what a deferred
manager does about them. Pure apart from croniter (which parses the expression and walks
the calendar, daylight-saving changes included) and zoneinfo.

Exactly-once is the database's business (a (name, fire time) record, see
``tomqueue.deferred.cron_runner``); this module only says which fire time is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from tomqueue.job import Job


def _croniter(expression: str, start: datetime) -> Any:
    from croniter import croniter  # imported only where a schedule is used

    return croniter(expression, start)


def check_cron(expression: object, timezone: object, owner: str) -> None:
    """Refuse a bad ``cron`` or ``cron_timezone`` at class definition, by name.

    Five fields (minute hour day month weekday) as in crontab; a sixth, seconds, is
    accepted too, as croniter reads it (handy for tests and sub-minute schedules).
    """
    from croniter import croniter

    if not isinstance(expression, str) or len(expression.split()) not in (5, 6):
        raise TypeError(
            f"{owner}.cron must be a crontab expression of five fields "
            f"(minute hour day month weekday), got {expression!r}"
        )
    if not croniter.is_valid(expression):
        raise ValueError(f"{owner}.cron is not a valid crontab expression: {expression!r}")
    zone_of(timezone, owner)


def zone_of(timezone: object, owner: str = "cron") -> ZoneInfo:
    if not isinstance(timezone, str) or not timezone:
        raise TypeError(f"{owner}.cron_timezone must be a time zone name, got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{owner}.cron_timezone names no known time zone: {timezone!r}") from exc


@dataclass(frozen=True)
class CronSchedule:
    """One job class's schedule: ``name`` is the class's stored name."""

    name: str
    expression: str
    timezone: str = "UTC"

    def latest_fire(self, now: datetime) -> datetime:
        """The last fire time at or before ``now``, in UTC. croniter's get_prev is strictly
        before its start, to the second: start from the next whole second."""
        local = now.astimezone(zone_of(self.timezone)).replace(microsecond=0)
        before: datetime = _croniter(self.expression, local + timedelta(seconds=1)).get_prev(
            datetime
        )
        return before.astimezone(UTC)

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after``, in UTC."""
        local = after.astimezone(zone_of(self.timezone))
        following: datetime = _croniter(self.expression, local).get_next(datetime)
        return following.astimezone(UTC)


def schedule_of(cls: type[Job]) -> CronSchedule | None:
    """The class's schedule, or None when it has no ``cron``."""
    if cls.cron is None:
        return None
    return CronSchedule(cls.class_name(), cls.cron, cls.cron_timezone)


class Fire(Enum):
    """What a manager does about a schedule's latest fire time."""

    NOTHING = "nothing"  # it fired already (recorded), or it is not new
    BASELINE = "baseline"  # first sight of the schedule: record it as seen, run nothing
    RUN = "run"  # enqueue the job for it (once: the record decides between managers)


def fire_decision(latest: datetime, last_recorded: datetime | None) -> Fire:
    """``latest`` is the latest fire time at or before now; ``last_recorded`` the newest
    fire time recorded for the schedule (by any manager, ever).

    A schedule seen for the first time runs nothing for fire times before it was deployed;
    after that, a fire time newer than the last recorded one runs once, however many fire
    times were missed in between (an outage of every manager runs the latest one only).
    """
    if last_recorded is None:
        return Fire.BASELINE
    if latest > last_recorded:
        return Fire.RUN
    return Fire.NOTHING
