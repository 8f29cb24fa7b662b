"""The worker stack's layers: ErrorHandling → Pop → LockJob → Timeout → Invoke.

Each layer is built once with its dependencies and keeps per-job state only in the
WorkContext, so one stack serves every slot thread of a worker at once.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol, TypeVar

from tomqueue.admission import Admission
from tomqueue.broker import BROKER_FAILURES
from tomqueue.database import retry_on_disconnect
from tomqueue.errors import (
    HandlerDecodeError,
    JobTimeout,
    MalformedNotificationError,
    UnknownJobClassError,
)
from tomqueue.handler import decode_handler
from tomqueue.notifications import notification_for
from tomqueue.runtime import Runtime
from tomqueue.snapshot import JobSnapshot
from tomqueue.wire import decode_notification
from tomqueue.worker.context import Delivery, WorkContext
from tomqueue.worker.outcome import Outcome

log = logging.getLogger(__name__)

Next = Callable[[WorkContext], Outcome]
T = TypeVar("T")


class DeliverySource(Protocol):
    """Where Pop takes messages from: the worker's consumer, highest priority first."""

    def pop(self, timeout: float) -> Delivery | None: ...


class ErrorHandling:
    """Outermost: nothing a job or a server does may kill the slot thread."""

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        try:
            return call_next(ctx)
        except Exception:
            log.exception("worker stack error for job %s", ctx.job_id, extra=ctx.log_extra())
            return Outcome.ERRORED


class Pop:
    """Takes the next message (highest level first), decodes it, and settles it afterwards.

    Every outcome is acked: the row, not the message, carries what happens next. Only an
    unexpected error requeues the message, so the job is looked at again.
    """

    def __init__(self, source: DeliverySource, runtime: Runtime, wait: float = 1.0) -> None:
        self.source = source
        self.runtime = runtime
        self.wait = wait

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        delivery = self.source.pop(self.wait)
        if delivery is None:
            return Outcome.IDLE
        ctx.delivery = delivery
        try:
            ctx.notification = decode_notification(delivery.body)
        except MalformedNotificationError as exc:
            log.warning("dropping a message that is not a tomqueue notification: %s", exc)
            delivery.ack()
            return Outcome.MALFORMED
        try:
            outcome = call_next(ctx)
        except BaseException:
            delivery.nack(requeue=True)
            raise
        if ctx.wake_deferred is not None:
            # the row already says when to run next; this only saves the manager a poll
            wake_deferred_manager(self.runtime, ctx.wake_deferred)
        # the row is already deleted or updated: ack last, so a crash before this line
        # means a redelivery that finds the row gone or changed, never a lost job
        delivery.ack()
        return outcome


class LockJob:
    """Re-checks and locks the row, then records what the run came to.

    The row is locked in one short transaction (SELECT ... FOR UPDATE, decide, UPDATE,
    COMMIT); nothing is held open while the job runs.
    """

    def __init__(self, runtime: Runtime, should_stop: Callable[[], bool]) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.should_stop = should_stop

    def _db(self, what: str, operation: Callable[[], T], forever: bool = False) -> T:
        return retry_on_disconnect(
            operation,
            what,
            self.runtime.settings.database_url,
            attempts=None if forever else 6,
            should_stop=None if forever else self.should_stop,
        )

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        note = ctx.notification
        assert note is not None
        settings = self.runtime.settings
        result = retry_on_disconnect(
            lambda: self.store.lock_for_run(
                note.job_id, note.digest, ctx.worker_name, ctx.lease_key, settings.max_crashes
            ),
            f"lock job {note.job_id}",
            settings.database_url,
            attempts=6,
        )
        ctx.lock = result
        ctx.locked_monotonic = time.monotonic()
        decision = result.admission
        if decision is Admission.DEFER:
            ctx.detail = "not yet due"
            ctx.wake_deferred = result.row
            return Outcome.DEFERRED
        if not decision.runs:
            ctx.detail = decision.value
            if decision is Admission.DROP_FAILED and result.row and result.row.crashes:
                log.error("job %s failed as poison: %s", note.job_id, result.row.last_error)
            log.debug("dropping notification for job %s: %s", note.job_id, decision.value)
            return Outcome.DROPPED
        row = result.row
        assert row is not None
        try:
            ctx.job = decode_handler(row.handler)
        except (UnknownJobClassError, HandlerDecodeError) as exc:
            # retrying cannot help: fail now, with a message that says what to do
            message = f"{type(exc).__name__}: {exc}"
            log.error("job %s cannot run: %s", row.id, message)
            self._db(f"fail job {row.id}", lambda: self.store.fail_unrunnable(row.id, message))
            return Outcome.FAILED
        if decision is Admission.RUN_AFTER_CRASH:
            log.warning("job %s: its worker %s died; running it again", row.id, row.last_error)
        if ctx.delivery is not None:
            ctx.delivery.mark_locked()  # long jobs get their message acked early
        outcome = call_next(ctx)
        if outcome is Outcome.SUCCEEDED:
            # delete, then (in Pop) ack: a crash between them gives a redelivery that
            # finds no row and is dropped
            self._db(
                f"delete finished job {row.id}",
                lambda: self.store.delete_succeeded(row.id, ctx.lease_key),
                forever=True,
            )
            return Outcome.SUCCEEDED
        return self._record_failure(ctx)

    def _record_failure(self, ctx: WorkContext) -> Outcome:
        assert ctx.lock is not None and ctx.lock.row is not None and ctx.job is not None
        row, job = ctx.lock.row, ctx.job
        attempts = row.attempts + 1
        error_text = ctx.error_text or "unknown error"
        give_up = attempts >= type(job).max_attempts
        run_at = None
        if not give_up:
            elapsed = timedelta(seconds=time.monotonic() - ctx.locked_monotonic)
            now = ctx.lock.db_now + elapsed  # the database's clock, not this host's
            run_at = job.reschedule_at(now, attempts)
        updated = self._db(
            f"record the failure of job {row.id}",
            lambda: self.store.record_failure(row.id, ctx.lease_key, attempts, error_text, run_at),
            forever=True,
        )
        if give_up:
            log.error(
                "job %s failed for good after %s attempts: %s",
                row.id,
                attempts,
                error_text.splitlines()[0] if error_text else "",
                extra=ctx.log_extra(),
            )
            _call_hook(job.failure, "failure", row.id)
            return Outcome.FAILED
        log.info("job %s failed (attempt %s); retry at %s", row.id, attempts, run_at)
        ctx.wake_deferred = updated
        return Outcome.RETRY_SCHEDULED


def wake_deferred_manager(runtime: Runtime, row: JobSnapshot) -> None:
    """Tell the deferred manager now; if this fails it finds the row on its next poll."""
    note = notification_for(row, runtime.settings.priority_map)
    try:
        runtime.publisher.publish_deferred([note])
    except BROKER_FAILURES as exc:
        log.warning("could not wake the deferred manager for job %s: %s", note.job_id, exc)


def _call_hook(hook: Callable[[], None], name: str, job_id: int) -> None:
    try:
        hook()
    except Exception:
        log.exception("the %s() hook of job %s raised; ignored", name, job_id)


def _raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Ask CPython to raise ``exc_type`` in ``thread`` at its next Python instruction."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
    )


class JobThread:
    """A long-lived thread that runs one job at a time for a slot.

    Reused from job to job, so a job's thread-local resources (a database connection, an
    HTTP session) survive between jobs as they would in a plain loop; replaced only when a
    job overruns its deadline and the thread has to be abandoned. The hand-over is a pair of
    bare locks, the cheapest wake-up CPython has: it happens twice for every job.
    """

    def __init__(self, name: str) -> None:
        self._go = threading.Lock()
        self._go.acquire()
        self._finished = threading.Lock()
        self._finished.acquire()
        self._task: Callable[[], None] | None = None
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            task = self._task
            if task is None:
                return
            try:
                task()
            except JobTimeout:
                return  # abandoned: this thread's job overran; the slot has a new thread
            self._finished.release()

    def run(self, task: Callable[[], None], timeout: float) -> bool:
        """Run ``task`` on this thread; False if it is still running after ``timeout``."""
        self._task = task
        self._go.release()
        return self._finished.acquire(timeout=timeout)

    def abandon(self) -> None:
        """Give up on the running task: raise JobTimeout in it, and let the thread end."""
        self._task = None
        _raise_in_thread(self.thread, JobTimeout)
        self._go.release()  # if the job finished just now, the idle loop wakes and ends


class Timeout:
    """Enforces max_run_time, for any number of concurrent jobs in one process.

    The job runs on its slot's JobThread while this layer waits with a deadline. On
    time-out the attempt is recorded as failed at once and the slot moves on with a fresh
    thread; JobTimeout is raised inside the overrunning thread, so the job cannot continue
    past its next Python instruction even if it is stuck in a blocking call (sleep, socket
    read) when time runs out.
    """

    def __init__(self) -> None:
        self._abandoned: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def abandoned_threads(self) -> int:
        """Timed-out job threads still stuck in a blocking call."""
        with self._lock:
            self._abandoned = [t for t in self._abandoned if t.is_alive()]
            return len(self._abandoned)

    def _job_thread(self) -> JobThread:
        runner: JobThread | None = getattr(self._local, "runner", None)
        if runner is None:
            runner = JobThread(f"{threading.current_thread().name}-job")
            self._local.runner = runner
        return runner

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        assert ctx.job is not None
        limit = type(ctx.job).max_run_time_seconds()
        box: list[Outcome | BaseException] = []

        def run() -> None:
            try:
                box.append(call_next(ctx))
            except JobTimeout:
                raise
            except BaseException as exc:  # handed back to the slot thread below
                box.append(exc)

        runner = self._job_thread()
        if not runner.run(run, limit):
            ctx.timed_out = True
            self._local.runner = None  # the next job gets a fresh thread
            runner.abandon()
            with self._lock:
                self._abandoned.append(runner.thread)
            exc = JobTimeout(f"job {ctx.job_id} exceeded max_run_time of {limit:g}s")
            ctx.error = exc
            ctx.error_text = f"JobTimeout: {exc}"
            _call_error_hooks(ctx, exc)
            log.warning("job %s timed out after %gs", ctx.job_id, limit, extra=ctx.log_extra())
            return Outcome.ATTEMPT_FAILED
        if not box:
            return Outcome.ATTEMPT_FAILED
        result = box[0]
        if isinstance(result, BaseException):
            raise result
        return result


def _call_error_hooks(ctx: WorkContext, exc: BaseException) -> None:
    assert ctx.job is not None
    job_id = ctx.job_id or 0
    try:
        ctx.job.error(exc)
    except Exception:
        log.exception("the error() hook of job %s raised; ignored", job_id)
    _call_hook(ctx.job.after, "after", job_id)


class Invoke:
    """Runs the hooks in Delayed::Job's order around perform (the stack's terminal)."""

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        job = ctx.job
        assert job is not None
        try:
            job.before()
            call_next(ctx)
            job.success()
        except JobTimeout:
            raise  # the Timeout layer has recorded it and run the hooks
        except Exception as exc:
            if ctx.timed_out:
                raise JobTimeout() from exc
            ctx.error = exc
            ctx.error_text = describe_error(exc)
            try:
                job.error(exc)
            except Exception:
                log.exception("the error() hook of job %s raised; ignored", ctx.job_id)
            _call_hook(job.after, "after", ctx.job_id or 0)
            return Outcome.ATTEMPT_FAILED
        try:
            job.after()
        except Exception as exc:
            ctx.error = exc
            ctx.error_text = describe_error(exc)
            return Outcome.ATTEMPT_FAILED
        return Outcome.SUCCEEDED


def describe_error(exc: BaseException) -> str:
    """What goes in last_error: the message first (for listings), then the traceback."""
    return f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc)).strip()


def perform(ctx: WorkContext) -> Outcome:
    """The centre of the stack: the job's own work."""
    assert ctx.job is not None
    ctx.job.perform()
    return Outcome.SUCCEEDED
