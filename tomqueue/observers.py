"""Observers: observe-only hooks told what happened to jobs (metrics, error reports, logs).

Layers wrap and may change what happens; observers only watch (River keeps the two
apart, and so do we). The worker stack's ``ObserveOutcome`` layer reports every job that
ended an attempt, the sweep every job whose worker died, the deferred manager every job
it released. An observer that raises is logged and skipped: watching a job can never
lose or break its bookkeeping, which is written before any observer hears of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from tomqueue.queues import shown_queue
from tomqueue.snapshot import JobSnapshot

log = logging.getLogger(__name__)


class Ending(StrEnum):
    """How one attempt of a job ended, as metrics and reports name it."""

    SUCCEEDED = "succeeded"  # performed; the row is deleted
    RETRIED = "retried"  # raised; a retry is scheduled
    FAILED = "failed"  # failed for good (ran out of attempts, or refused without running)
    TIMEOUT = "timeout"  # overran max_run_time (retried or failed for good)
    CRASHED = "crashed"  # its worker died; counted when the sweep recovers the row


@dataclass(frozen=True)
class JobEnded:
    """One attempt's end, as the worker recorded it (the row is already written)."""

    job_id: int
    job_class: str
    queue: str  # as people name it: "default" for jobs with no queue
    attempts: int  # the row's attempts count after this attempt (failed runs so far)
    attempt: int  # which attempt this was, from 1
    ending: Ending
    failed_for_good: bool
    ran: bool  # False: refused without running (unknown class, poison, crashes)
    duration: float | None  # seconds the attempt ran, None if it did not run
    worker: str
    error: BaseException | None = None  # what failed the attempt, if it failed


class Observer:
    """Base of every observer: override what you watch; the rest does nothing."""

    def job_ended(self, event: JobEnded) -> None:
        """An attempt ended and its outcome is written."""

    def job_crashed(self, row: JobSnapshot) -> None:
        """The sweep took back ``row`` from a worker that died running it."""

    def job_released(self, job_id: int, queue: str, lateness: float) -> None:
        """The deferred manager released a job ``lateness`` seconds after its run_at."""


class Observers:
    """The observers of one App, told in the order they were added; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observers: tuple[Observer, ...] = ()

    def add(self, observer: Observer) -> None:
        with self._lock:
            self._observers = (*self._observers, observer)

    def __iter__(self) -> Iterator[Observer]:
        return iter(self._observers)

    def __len__(self) -> int:
        return len(self._observers)

    def job_ended(self, event: JobEnded) -> None:
        for observer in self._observers:
            _guarded(observer, "job_ended", partial(observer.job_ended, event))

    def job_crashed(self, row: JobSnapshot) -> None:
        for observer in self._observers:
            _guarded(observer, "job_crashed", partial(observer.job_crashed, row))

    def job_released(self, job_id: int, queue: str | None, lateness: float) -> None:
        shown = shown_queue(queue)
        for observer in self._observers:
            _guarded(
                observer, "job_released", partial(observer.job_released, job_id, shown, lateness)
            )


def _guarded(observer: Observer, what: str, call: Callable[[], None]) -> None:
    try:
        call()
    except Exception:  # an observer is someone else's code: log it, carry on
        log.exception("observer %s.%s raised; ignored", type(observer).__name__, what)
