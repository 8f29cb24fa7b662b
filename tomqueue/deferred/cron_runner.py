"""CronRunner: enqueues each cron job class once per fire time, across every manager.

Every tomqueue-deferred (leader and standbys alike) runs one over the job classes it has
loaded with a ``cron``. At a fire time each of them tries, in one transaction, to insert the
(name, fire time) record and enqueue the job; the primary key lets exactly one insert
through, and the job commits with its record or not at all. So a fire time runs once
whether one manager runs or five, whether one was SIGKILLed mid-way or all restarted.
``tomqueue.cron.fire_decision`` says which fire time is due; the database settles who.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from tomqueue.cron import CronSchedule, Fire, fire_decision, schedule_of
from tomqueue.database import is_connection_error

if TYPE_CHECKING:
    from tomqueue.app import App
    from tomqueue.job import Job

log = logging.getLogger(__name__)

FIRE_RECORDS_KEPT = 7 * 86400.0  # seconds of fire records kept (each schedule's newest always)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CronRunner:
    """Fires the schedules of ``classes``; ``tick()`` as often as the manager turns."""

    def __init__(
        self, app: App, classes: Iterable[type[Job]], clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.app = app
        self.clock = clock
        self._schedules: dict[str, tuple[CronSchedule, type[Job]]] = {}
        for cls in classes:
            schedule = schedule_of(cls)
            if schedule is not None:
                self._schedules[schedule.name] = (schedule, cls)
        # before this instant a schedule has nothing to do: no database round trip
        self._next_check = dict.fromkeys(self._schedules, _EARLIEST)
        self.fired = 0

    @property
    def schedules(self) -> list[CronSchedule]:
        return [schedule for schedule, _ in self._schedules.values()]

    def seconds_until_next(self) -> float | None:
        """How long the manager may sleep before a schedule is due (None: no schedules)."""
        if not self._next_check:
            return None
        return max(0.0, (min(self._next_check.values()) - self.clock()).total_seconds())

    def tick(self) -> int:
        """Fire what is due; returns how many jobs this manager enqueued."""
        now = self.clock()
        due = [name for name, at in self._next_check.items() if at <= now]
        if not due:
            return 0
        last = self.app.store.cron.last_fires(due)
        fired = 0
        for name in due:
            schedule, cls = self._schedules[name]
            latest = schedule.latest_fire(now)
            decision = fire_decision(latest, last.get(name))
            if decision is Fire.BASELINE:
                self.app.store.cron.baseline(name, latest)
                log.info(
                    "cron %s (%s) first seen; next fire at %s",
                    name,
                    schedule.expression,
                    schedule.next_fire(now).isoformat(),
                )
            elif decision is Fire.RUN:
                fired += self._fire(schedule, cls, latest)
            self._next_check[name] = schedule.next_fire(now)
        self.fired += fired
        return fired

    def _fire(self, schedule: CronSchedule, cls: type[Job], fire_at: datetime) -> int:
        """Claim the fire time and enqueue the job in one transaction: 1 if this manager
        did, 0 if another had (or the job could not be built, which is logged)."""
        try:
            with Session(self.app.engine) as session, session.begin():
                conn = session.connection()
                if not self.app.store.cron.claim(conn, schedule.name, fire_at):
                    return 0
                [job_id] = self.app.enqueue_many([cls()], session=session)
                self.app.store.cron.link(conn, schedule.name, fire_at, job_id)
        except Exception as exc:
            if is_connection_error(exc):
                raise  # the manager's loop reconnects; the fire time is not recorded yet
            log.error(
                "cron %s could not enqueue its job for %s (%s: %s); nothing was recorded",
                schedule.name,
                fire_at.isoformat(),
                type(exc).__name__,
                exc,
            )
            return 0
        log.info("cron %s fired for %s: job %s", schedule.name, fire_at.isoformat(), job_id)
        return 1

    def purge(self) -> int:
        """Old fire records go (each schedule's newest stays); a failure waits for the
        next sweep, never stopping the manager."""
        if not self._schedules:
            return 0
        try:
            return self.app.store.cron.purge(FIRE_RECORDS_KEPT)
        except Exception as exc:
            if is_connection_error(exc):
                raise
            log.warning("could not purge old cron records (%s: %s)", type(exc).__name__, exc)
            return 0
