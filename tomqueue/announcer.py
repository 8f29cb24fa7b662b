"""Announcer: publishes enqueue's notifications from a background thread, in batches.

The row is the truth and a lost announcement is healed (an unreleased row is released by
the deferred manager or any worker's sweep; a released row whose message vanished is
republished by the stale sweep), so ``enqueue`` need not wait for RabbitMQ: it commits,
hands the notifications here and returns. One thread per App owns a Publisher (and so
its own connection: pika connections are not thread-safe) and sends whatever has queued
up since its last send as one batch — a single message with a publisher confirm, several
on the publisher's transactional channel, whose one commit RabbitMQ answers once every
message is routed and on disk. Under load that is one broker round trip for many
enqueues, found by the queue itself, with no timer and no added latency when idle.

A batch that fails is retried on a fresh connection; what still fails goes to
``give_up``, which marks the rows unreleased so the sweep announces them later. Nothing
submitted is dropped silently: it is confirmed, or given up, or (at exit) waited for a
bounded time and then given up.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from tomqueue.broker import BROKER_FAILURES, Publisher
from tomqueue.settings import Settings
from tomqueue.wire import Notification

log = logging.getLogger(__name__)

GiveUp = Callable[[list[Notification]], None]


class Announcer:
    """``submit`` never waits on the broker; ``flush`` and ``close`` wait, bounded."""

    def __init__(
        self,
        settings: Settings,
        give_up: GiveUp,
        publisher_factory: Callable[[Settings], Publisher] = Publisher,
        max_batch: int = 500,
        max_pending: int = 50_000,
        tries: int = 3,
        exit_flush_timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self._give_up = give_up
        self._publisher_factory = publisher_factory
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._tries = tries
        self._exit_flush_timeout = exit_flush_timeout
        self._cond = threading.Condition()
        self._queue: deque[tuple[Notification, bool]] = deque()
        self._submitted = 0  # notifications accepted by submit, ever
        self._settled = 0  # of those, confirmed or given up
        self._confirmed = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self.batches = 0  # broker round trips made, for benchmarks and tests

    # -- callers' side ---------------------------------------------------------------------

    def submit(self, notifications: Sequence[Notification], deferred: bool = False) -> None:
        """Queue notifications for the thread; give them up at once if it cannot take them.

        A full queue (the broker has been slow for a while) makes the caller wait up to
        the publish timeout for room, then the rest is given up: memory stays bounded and
        the rows are left to the sweep.
        """
        if not notifications:
            return
        overflow: list[Notification] = []
        with self._cond:
            if self._closing:
                overflow = list(notifications)
            else:
                deadline = time.monotonic() + self.settings.publish_timeout.total_seconds()
                while len(self._queue) + len(notifications) > self._max_pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                room = max(0, self._max_pending - len(self._queue))
                accepted, overflow = list(notifications[:room]), list(notifications[room:])
                self._queue.extend((note, deferred) for note in accepted)
                self._submitted += len(accepted)
                self._start_thread()
                self._cond.notify_all()
        if overflow:
            log.warning(
                "%s notification(s) not queued (the broker is behind); their rows are left "
                "for the sweep to announce",
                len(overflow),
            )
            self._hand_over(overflow, deferred)

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted before this call is confirmed or given up.

        True if that happened within ``timeout`` and nothing was given up meanwhile.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            confirmed_before, settled_before = self._confirmed, self._settled
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            confirmed = self._confirmed - confirmed_before
            return confirmed >= self._settled - settled_before

    def close(self, timeout: float | None = None) -> None:
        """Flush for at most ``timeout`` seconds, stop the thread, give up what is left."""
        wait = self._exit_flush_timeout if timeout is None else timeout
        with self._cond:
            thread = self._thread
        if thread is not None:
            self.flush(wait)
        with self._cond:
            self._closing = True
            left = list(self._queue)
            self._queue.clear()
            self._settled += len(left)
            self._cond.notify_all()
        if thread is not None:
            thread.join(max(wait, 1.0))
            atexit.unregister(self.close)
        if left:
            log.warning("%s notification(s) unsent at close; left for the sweep", len(left))
            for deferred in (False, True):
                self._hand_over([note for note, d in left if d is deferred], deferred)

    # -- the thread ------------------------------------------------------------------------

    def _start_thread(self) -> None:
        """Start the publishing thread on first use (call with the condition held)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tomqueue-announcer", daemon=True
            )
            self._thread.start()
            atexit.register(self.close)  # a bounded flush when the process exits

    def _run(self) -> None:
        publisher = self._publisher_factory(self.settings)
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return
                    batch = [
                        self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))
                    ]
                    self._cond.notify_all()  # room for callers waiting in submit
                for deferred in (False, True):
                    notes = [note for note, d in batch if d is deferred]
                    if notes:
                        self._send(publisher, notes, deferred)
        finally:
            publisher.close()

    def _send(self, publisher: Publisher, notes: list[Notification], deferred: bool) -> None:
        send = publisher.publish_deferred if deferred else publisher.publish
        for attempt in range(1, self._tries + 1):
            try:
                send(notes)
            except BROKER_FAILURES as exc:
                if attempt == self._tries or self._closing:
                    log.warning(
                        "could not announce %s job(s) (%s); their rows are left for the "
                        "sweep to announce",
                        len(notes),
                        exc,
                    )
                    break
                time.sleep(0.05 * 2**attempt)  # the publisher reconnects on the next send
            else:
                self._settle(len(notes), confirmed=True)
                return
        self._hand_over(notes, deferred)
        self._settle(len(notes), confirmed=False)

    def _settle(self, count: int, confirmed: bool) -> None:
        with self._cond:
            self.batches += 1
            self._settled += count
            if confirmed:
                self._confirmed += count
            self._cond.notify_all()

    def _hand_over(self, notes: list[Notification], deferred: bool) -> None:
        """Give up due notifications to the caller's healing path. A lost wake-up for the
        deferred manager needs none: it finds the row on its next poll."""
        if not notes or deferred:
            return
        try:
            self._give_up(notes)
        except Exception:  # the row is safe either way: the stale sweep finds it
            log.exception("could not hand %s unsent notification(s) to the sweep", len(notes))
