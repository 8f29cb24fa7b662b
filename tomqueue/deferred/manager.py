"""DeferredManager: releases future jobs at their run_at, holding only a horizon in memory.

The database is the truth: a future job is a row with ``released_at IS NULL``. The leader
polls the rows coming due within the horizon (an index range scan on run_at), holds them in
a DeferredSchedule, and at each run_at publishes the notification to the job's priority
queue — then, and only then, marks the row released. A crash between the two costs a
duplicate notification (harmless: the digest and the row lock make it a no-op), never a job.
Wake-up messages on the deferred queue let a job due in under a poll interval be held at
once; they are acked on arrival because the row, not the message, is what counts.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from tomqueue.broker import BROKER_FAILURES
from tomqueue.broker.deferred_consumer import DeferredConsumer
from tomqueue.database import is_connection_error
from tomqueue.deferred.cron_runner import CronRunner
from tomqueue.deferred.leadership import Leadership
from tomqueue.deferred.schedule import DeferredSchedule
from tomqueue.errors import (
    DatabaseUnavailableError,
    MalformedNotificationError,
)
from tomqueue.job import registry
from tomqueue.priority import level_for
from tomqueue.settings import mask_url
from tomqueue.sweep import Sweeper
from tomqueue.wire import Notification, decode_notification

if TYPE_CHECKING:  # the App makes these; they only need its type
    from tomqueue.app import App

log = logging.getLogger(__name__)

MAX_HELD = 50_000
RELEASE_BATCH = 500
PURGE_BATCH = 1000  # expired status rows deleted per statement
PURGE_BATCHES = 3  # statements per sweep at most: the purge never holds up releases


class DeferredManager:
    """The tomqueue-deferred process."""

    def __init__(self, runtime: App, standby_retry: float = 0.5) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.store = runtime.store.deferred
        self.publisher = runtime.publisher
        self.schedule = DeferredSchedule()
        self.leadership = Leadership(
            self.settings.database_url, self.settings.prefix, self.settings.lease_timeout
        )
        self.standby_retry = standby_retry
        self._stopping = threading.Event()
        self.consumer = DeferredConsumer(self.settings, self._on_wake_up)
        self._clock_offset = timedelta(0)  # database clock minus this host's clock
        self._next_poll = 0.0
        self._next_sweep = 0.0
        self._next_leadership_check = 0.0
        self.sweeper = Sweeper(runtime)
        # the cron schedules of the job classes this process loaded (--app)
        self.cron = CronRunner(runtime, registry.classes())
        self.released_total = 0
        self.purged_total = 0

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("received %s: stopping", signal.strsignal(signum))
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self) -> int:
        log.info(
            "deferred manager starting: prefix %r, horizon %ss, database %s",
            self.settings.prefix,
            self.settings.deferred_horizon.total_seconds(),
            mask_url(self.settings.database_url),
        )
        self.runtime.ensure_prefix_bound(attempts=None, should_stop=self._stopping.is_set)
        for schedule in self.cron.schedules:
            log.info("cron %s: %r (%s)", schedule.name, schedule.expression, schedule.timezone)
        delay = 0.2
        try:
            while not self._stopping.is_set():
                try:
                    if not self._lead_or_wait():
                        continue
                    self._turn()
                    delay = 0.2
                except (DatabaseUnavailableError, *BROKER_FAILURES) as exc:
                    self._lost(f"{type(exc).__name__}: {exc}", delay)
                    delay = min(delay * 2, 5.0)
                except Exception as exc:
                    if not is_connection_error(exc):
                        raise
                    self._lost(f"PostgreSQL: {type(exc).__name__}", delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self.consumer.close()
            self.publisher.close()
            self.leadership.close()
        log.info("deferred manager stopped; released %s job(s)", self.released_total)
        return 0

    def _lost(self, why: str, delay: float) -> None:
        log.warning("deferred manager lost a server (%s); retrying in %.1fs", why, delay)
        self.consumer.close()
        self.schedule.clear()  # the rows are still unreleased: the next poll finds them
        self.leadership.release()
        self._stopping.wait(delay)

    def _lead_or_wait(self) -> bool:
        if self.leadership.held:
            return True
        if self.leadership.try_acquire():
            log.info("deferred manager is now the leader for prefix %r", self.settings.prefix)
            self._next_poll = 0.0
            self._next_leadership_check = time.monotonic() + self.leadership.timings.check_interval
            return True
        self.cron.tick()  # standbys fire cron schedules too: the fire record picks one
        until_cron = self.cron.seconds_until_next()
        self._stopping.wait(min(self.standby_retry, until_cron or self.standby_retry))
        return False

    # -- one turn of the loop --------------------------------------------------------------

    def _turn(self) -> None:
        if not self.consumer.connected:
            self.consumer.open()
        if not self._still_leading():
            return
        now_mono = time.monotonic()
        if now_mono >= self._next_poll:
            self._poll()
            self._next_poll = now_mono + self.settings.deferred_poll_interval.total_seconds()
        self._release_due()
        self.cron.tick()
        if now_mono >= self._next_sweep:
            self._next_sweep = now_mono + self.settings.sweep_interval.total_seconds()
            self.sweeper.sweep()
            self._purge_history()
            self.cron.purge()
        self.consumer.run_once(time_limit=self._sleep_for())
        self._release_due()

    def _purge_history(self) -> None:
        """Delete expired status rows (tomqueue_job_history), a small batch per statement
        and a few per sweep, so a backlog of them never delays a release."""
        status = self.runtime.store.status
        for _ in range(PURGE_BATCHES):
            try:
                purged = status.purge_expired(PURGE_BATCH)
            except Exception as exc:
                if is_connection_error(exc):
                    raise
                log.warning(
                    "could not purge expired job statuses (%s: %s)", type(exc).__name__, exc
                )
                return
            self.purged_total += purged
            if purged < PURGE_BATCH:
                return

    def _still_leading(self) -> bool:
        """Check the leadership once per check interval, whatever the poll interval: the
        check keeps a live leader's session from being ended as idle, and lets a leader cut
        off from PostgreSQL step down (and stop releasing) before a standby takes over."""
        now_mono = time.monotonic()
        if now_mono < self._next_leadership_check:
            return True
        if not self.leadership.still_held():
            self.schedule.clear()  # the rows are still unreleased: the next leader polls them
            self._next_leadership_check = 0.0
            return False
        self._next_leadership_check = now_mono + self.leadership.timings.check_interval
        return True

    def _db_now(self) -> datetime:
        return datetime.now(UTC) + self._clock_offset

    def _sleep_for(self) -> float:
        now_mono = time.monotonic()
        until_poll = max(0.0, self._next_poll - now_mono)
        until_check = max(0.0, self._next_leadership_check - now_mono)
        until_cron = self.cron.seconds_until_next()
        if until_cron is not None:
            until_check = min(until_check, until_cron)
        next_run_at = self.schedule.next_run_at()
        if next_run_at is None:
            return min(until_poll, until_check, 1.0)
        until_due = (next_run_at - self._db_now()).total_seconds()
        return max(0.0, min(until_poll, until_check, until_due, 1.0))

    def _poll(self) -> None:
        """Hold every unreleased row due within the horizon (the database is the truth)."""
        before = datetime.now(UTC)
        db_now, rows = self.store.fetch_unreleased(
            self.settings.deferred_horizon.total_seconds(), MAX_HELD
        )
        after = datetime.now(UTC)
        # the database read its clock somewhere between before and after: assume the middle
        self._clock_offset = db_now - (before + (after - before) / 2)
        priority_map = self.settings.priority_map
        for job_id, digest, run_at, priority, queue in rows:
            self.schedule.add(
                Notification(job_id, digest, level_for(priority, priority_map), run_at, queue)
            )

    def _release_due(self) -> None:
        # leadership is asked before each batch (when a check is due): a long release, or
        # a poll that took long, must not go on after a standby may have taken over
        while self._still_leading():
            due = self.schedule.pop_due(self._db_now(), limit=RELEASE_BATCH)
            if not due:
                return
            try:
                self.publisher.publish(due)
            except BaseException:
                self.schedule.put_back(due)
                raise
            # published first, then marked: a crash here means a duplicate, not a loss
            self.store.mark_released_at([(note.job_id, note.run_at) for note in due])
            self.released_total += len(due)
            released = self._db_now()
            for note in due:  # how late each went out (tomqueue_release_lateness_seconds)
                lateness = (released - note.run_at).total_seconds()
                self.runtime.observers.job_released(note.job_id, note.queue, lateness)
            log.debug("released %s job(s)", len(due))

    # -- wake-ups from the deferred queue ---------------------------------------------------

    def _on_wake_up(self, body: bytes) -> None:
        """Hold a job due within the horizon at once (DeferredConsumer acks the message)."""
        try:
            note = decode_notification(body)
        except Exception as exc:  # MalformedNotificationError, or anything it missed
            # a hostile message must never stop the manager: every standby would get the
            # same message and stop too, and no future job would be released again
            reason = exc if isinstance(exc, MalformedNotificationError) else repr(exc)[:200]
            log.warning("dropping a malformed message on the deferred queue: %s", reason)
        else:
            horizon = self._db_now() + self.settings.deferred_horizon
            if note.run_at <= horizon and len(self.schedule) < MAX_HELD:
                self.schedule.add(note)
            # beyond the horizon: forget it; the row is polled when its time comes near
