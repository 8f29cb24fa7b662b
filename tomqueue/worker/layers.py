"""The worker stack's layers: ErrorHandling → Pop → LockJob → Timeout → Invoke (the gates
between LockJob and Timeout are in ``tomqueue.worker.gates``).

Each layer is built once with its dependencies and keeps per-job state only in the
WorkContext, so one stack serves every slot thread of a worker at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from tomqueue.admission import Admission
from tomqueue.database import retry_on_disconnect
from tomqueue.error_text import describe_error, storable
from tomqueue.errors import JobRefusedError, JobTimeout, MalformedNotificationError
from tomqueue.handler import decode_handler
from tomqueue.job import Job, validate_job_class
from tomqueue.ports import PublisherPort, WorkerStorePort
from tomqueue.progress import RunStatus, StatusReport, attach, detach
from tomqueue.queues import shown_queue
from tomqueue.settings import Settings
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import Ended
from tomqueue.verdicts import LockedVerdict, verdict_for_locked
from tomqueue.wire import decode_notification
from tomqueue.worker.context import WorkContext
from tomqueue.worker.deferred_wake import wake_deferred_manager
from tomqueue.worker.failed_tries import FailedTries
from tomqueue.worker.gates import leave_gates
from tomqueue.worker.hooks import call_failure_hook, retry_time, run_hooked
from tomqueue.worker.job_thread import JobThread
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.ports import Delivery, DeliverySource, LeaseGate

log = logging.getLogger(__name__)

Next = Callable[[WorkContext], Outcome]
T = TypeVar("T")


class ErrorHandling:
    """Outermost: nothing a job or a server does may kill the slot thread."""

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        try:
            return call_next(ctx)
        except Exception:
            log.exception("worker stack error for job %s", ctx.job_id, extra=ctx.log_extra())
            return Outcome.ERRORED


class LeaseNotHeldError(RuntimeError):
    """The worker lost its lease: the message goes back to the queue untouched."""


class Pop:
    """Takes the next message (highest level first), decodes it, and settles it afterwards.

    Every outcome is acked: the row, not the message, carries what happens next. A message
    that is not a valid notification, for any reason, is acked and logged at once. An
    unexpected error before the row is locked requeues the message, up to ``max_tries``
    times; after that it is dropped to the row's truth: the sweep announces the row again
    if it still needs running, so a message that always fails cannot loop for ever.
    """

    def __init__(
        self,
        source: DeliverySource,
        wake: PublisherPort,
        settings: Settings,
        wait: float = 1.0,
        max_tries: int = 3,
    ) -> None:
        self.source = source
        self.wake = wake  # wakes the deferred manager for rows that became its business
        self.settings = settings
        self.wait = wait
        self.max_tries = max_tries
        self.failed_tries = FailedTries()

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        delivery = self.source.pop(self.wait)
        if delivery is None:
            return Outcome.IDLE
        ctx.delivery = delivery
        try:
            ctx.notification = decode_notification(delivery.body)
        except Exception as exc:  # MalformedNotificationError, or anything it missed
            reason = exc if isinstance(exc, MalformedNotificationError) else repr(exc)[:200]
            log.warning("dropping a message that is not a tomqueue notification: %s", reason)
            delivery.ack()
            return Outcome.MALFORMED
        try:
            outcome = call_next(ctx)
        except LeaseNotHeldError:
            delivery.nack(requeue=True)  # not the message's fault: no try counted
            raise
        except BaseException:
            self._settle_after_error(ctx, delivery)
            raise
        if ctx.wake_deferred is not None:
            # the row already says when to run next; this only saves the manager a poll
            wake_deferred_manager(self.wake, self.settings, ctx.wake_deferred)
        if outcome is Outcome.STUCK:
            return outcome  # unacked: the message comes back when this process has gone
        # the row is already deleted or updated: ack last, so a crash before this line
        # means a redelivery that finds the row gone or changed, never a lost job
        delivery.ack()
        return outcome

    def _settle_after_error(self, ctx: WorkContext, delivery: Delivery) -> None:
        tries = self.failed_tries.count(delivery.body)
        if tries < self.max_tries:
            delivery.nack(requeue=True)
            return
        self.failed_tries.forget(delivery.body)
        log.error(
            "dropping the notification for job %s after %s failed tries; the row stays the "
            "truth: the sweep announces it again if it still needs running",
            ctx.job_id,
            tries,
        )
        delivery.ack()


class LockJob:
    """Re-checks and locks the row, then records what the run came to.

    The row is locked by one conditional UPDATE (or, when anything is unusual, in one short
    transaction with SELECT ... FOR UPDATE); nothing is held open while the job runs.
    """

    def __init__(
        self,
        store: WorkerStorePort,
        settings: Settings,
        should_stop: Callable[[], bool],
        lease: LeaseGate | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.should_stop = should_stop
        self.lease = lease

    def _db(self, what: str, operation: Callable[[], T], forever: bool = False) -> T:
        return retry_on_disconnect(
            operation,
            what,
            self.settings.database_url,
            attempts=None if forever else 6,
            should_stop=None if forever else self.should_stop,
        )

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        note = ctx.notification
        if self.lease is not None and not self.lease.wait_held(timeout=5.0):
            # a lock under a lease we do not hold could be taken over while the job runs
            raise LeaseNotHeldError("the worker's lease is not held; not taking new jobs")
        # the same ctx.locked_by on every retry: a lock whose reply was lost is ours
        result = self._db(
            f"lock job {note.job_id}",
            lambda: self.store.lock_for_run(note.job_id, note.digest, ctx.locked_by, ctx.lease_key),
        )
        ctx.lock = result
        ctx.locked_monotonic = time.monotonic()
        decision = result.admission
        if decision is Admission.DEFER:
            ctx.wake_deferred = result.row
            return Outcome.DEFERRED
        if not decision.runs:
            if decision is Admission.ORPHANED:
                log.info(
                    "job %s is held by %s, whose lease is gone; the sweep runs it again "
                    "once the lease has stayed gone for the orphan grace",
                    note.job_id,
                    result.row.locked_by if result.row else "?",
                )
            log.debug("dropping notification for job %s: %s", note.job_id, decision.value)
            return Outcome.DROPPED
        row = result.row
        assert row is not None
        if not self.settings.queues.serves(row.queue):
            return self._hand_back(ctx, row)
        try:
            outcome = self._run_locked(ctx, row, call_next)
        except BaseException as exc:
            outcome = self._release_after_internal_error(ctx, row, exc)
        if outcome is not Outcome.STUCK:  # a stuck job holds its slots until the exit
            leave_gates(ctx)
        return outcome

    def _hand_back(self, ctx: WorkContext, row: JobSnapshot) -> Outcome:
        """A job of a queue this worker does not serve reached it (a message routed before
        named queues existed, or by hand): unlock it unrun, to be announced to its own
        queue's workers; no attempt is counted."""
        log.warning(
            "job %s is in queue %r, which this worker does not serve (%s); handing it back",
            row.id,
            shown_queue(row.queue),
            self.settings.queues.describe(),
        )
        self._db(f"hand back job {row.id}", lambda: self.store.hand_back(row.id, ctx.locked_by))
        return Outcome.DROPPED

    def _run_locked(self, ctx: WorkContext, row: JobSnapshot, call_next: Next) -> Outcome:
        job, refusal = self._build_job(row)
        if job is None:
            return self._refuse(ctx, row, None, refusal)
        ctx.job = job
        verdict = verdict_for_locked(row, type(job).max_attempts, self.settings.max_crashes)
        if verdict.kind is not LockedVerdict.RUN:
            return self._refuse(ctx, row, job, verdict.last_error)
        if row.crashes:
            log.warning(
                "job %s: running it again after %s: %s",
                row.id,
                row.crashes,
                (row.last_error or "").splitlines()[0] if row.last_error else "crash",
            )
        if ctx.delivery is not None:
            ctx.delivery.mark_locked()  # long jobs get their message acked early
        attach(job, lambda: self._run_status(ctx, row, job))
        try:
            outcome = call_next(ctx)
        finally:
            run = detach(job)
        if outcome in (Outcome.STUCK, Outcome.PARKED):
            # stuck: the job may still be running, so the row stays locked; parked: the
            # row is unlocked already, to wait at a gate
            return outcome
        if outcome is Outcome.SUCCEEDED:
            # the run's last report rides on the delete, which records the history row
            ended = self._ended(type(job), run.take_final() if run is not None else None)
            # delete, then (in Pop) ack: a crash between them gives a redelivery that
            # finds no row and is dropped
            self._db(
                f"delete finished job {row.id}",
                lambda: self.store.delete_succeeded(row.id, ctx.locked_by, ended),
                forever=True,
            )
            return Outcome.SUCCEEDED
        if run is not None:
            run.flush()  # what the throttle held back, while the row is still ours
            run.take_final()
        return self._record_failure(ctx, row, job)

    def _run_status(self, ctx: WorkContext, row: JobSnapshot, job: Job) -> RunStatus:
        """The run's progress and fields, written to its history row while it holds the
        row (made only when the job first reports: tomqueue.progress.attach)."""
        job_id, locked_by, job_class = row.id, ctx.locked_by, type(job)
        class_name = job_class.class_name()
        ttl = job_class.status_ttl_seconds(self.settings.status_ttl.total_seconds())
        keep = job_class.max_run_time_seconds() + ttl  # never expires while it may run
        return RunStatus(
            lambda report: self.store.write_status(job_id, locked_by, class_name, report, keep),
            throttle=self.settings.status_throttle.total_seconds(),
        )

    def _ended(self, job_class: type[Job] | None, report: StatusReport | None = None) -> Ended:
        """What the statement ending the job adds to its history row."""
        default_ttl = self.settings.status_ttl.total_seconds()
        if job_class is None:
            return Ended(None, default_ttl, report)
        return Ended(job_class.class_name(), job_class.status_ttl_seconds(default_ttl), report)

    def _build_job(self, row: JobSnapshot) -> tuple[Job | None, str]:
        """The job object, or None and why it can never run here (no retries help)."""
        try:
            job = decode_handler(row.handler)
            validate_job_class(type(job))
        except BaseException as exc:  # data from the row, and the class's own __new__
            message = describe_error(exc).splitlines()[0]
            return None, f"{message}\n(job {row.id}: `tomqueue retry {row.id}` once fixed)"
        return job, ""

    def _refuse(self, ctx: WorkContext, row: JobSnapshot, job: Job | None, why: str) -> Outcome:
        """Fail the locked row for good without running it, and tell the job if we can."""
        log.error("job %s failed for good without running: %s", row.id, why.splitlines()[0])
        ctx.error = JobRefusedError(why)
        ended = self._ended(type(job) if job is not None else None)
        if job is None:
            ended = Ended(row.class_name, ended.ttl_seconds)  # as the handler names it
        self._db(
            f"fail job {row.id}",
            lambda: self.store.fail_held(row.id, ctx.locked_by, why, ended),
            forever=True,
        )
        if job is not None:
            call_failure_hook(job)
        return Outcome.REFUSED

    def _record_failure(self, ctx: WorkContext, row: JobSnapshot, job: Job) -> Outcome:
        attempts = row.attempts + 1
        error_text = ctx.error_text or "unknown error"
        give_up = attempts >= type(job).max_attempts
        run_at = None
        if not give_up:
            elapsed = timedelta(seconds=time.monotonic() - ctx.locked_monotonic)
            now = ctx.lock.db_now + elapsed  # the database's clock, not this host's
            run_at, problem = retry_time(job, now, attempts)
            if problem is not None:
                error_text = f"{error_text}\n({problem})"
        ended = self._ended(type(job))  # recorded only if it fails for good
        updated = self._db(
            f"record the failure of job {row.id}",
            lambda: self.store.record_failure(
                row.id, ctx.locked_by, attempts, error_text, run_at, ended
            ),
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
            call_failure_hook(job)
            return Outcome.FAILED
        log.info("job %s failed (attempt %s); retry at %s", row.id, attempts, run_at)
        ctx.wake_deferred = updated
        return Outcome.RETRY_SCHEDULED

    def _release_after_internal_error(
        self, ctx: WorkContext, row: JobSnapshot, exc: BaseException
    ) -> Outcome:
        """Something in tomqueue itself failed after the lock: record it as a failed
        attempt, so the row is never left locked by this live worker. If even that write
        fails, the worker's own sweep unlocks the row (no attempt of it is in flight)."""
        log.error("internal error while running job %s", row.id, exc_info=exc)
        text = f"internal error in the worker: {describe_error(exc)}"
        try:
            # due again at once (its own run_at): it did not fail by its own doing
            self._db(
                f"record the failure of job {row.id}",
                lambda: self.store.record_failure(
                    row.id, ctx.locked_by, row.attempts + 1, text, row.run_at
                ),
            )
        except Exception:
            log.exception("could not record the failure of job %s either", row.id)
        return Outcome.ERRORED


class Timeout:
    """Enforces max_run_time, for any number of concurrent jobs in one process.

    The job runs on its slot's JobThread while this layer waits with a deadline. On
    overrun, JobTimeout is raised inside the job, which ends it at its next Python
    instruction, and the attempt is recorded as failed once the job has actually ended.
    A job blocked in C (a socket read, a driver call) does not see the JobTimeout: the row
    stays locked while it may still run, and if it has not ended within ``timeout_grace``
    the outcome is STUCK and the worker process exits, so its lease dies with it and the
    orphan path runs the job again. A job never runs twice at once.
    """

    def __init__(self, grace: float = 10.0, on_stuck: Callable[[WorkContext], None] | None = None):
        self.grace = grace
        self.on_stuck = on_stuck
        self._local = threading.local()

    def _job_thread(self) -> JobThread:
        runner: JobThread | None = getattr(self._local, "runner", None)
        if runner is None or not runner.is_alive():
            runner = JobThread(f"{threading.current_thread().name}-job")
            self._local.runner = runner
        return runner

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        limit = type(ctx.job).max_run_time_seconds()
        box: list[Outcome | BaseException] = []

        def run() -> None:
            try:
                box.append(call_next(ctx))
            except BaseException as exc:  # handed back to the slot thread below
                box.append(exc)

        runner = self._job_thread()
        if runner.run(run, limit):
            return _unbox(box)
        self._local.runner = None  # the next job gets a fresh thread
        runner.interrupt()
        runner.wait(self.grace)
        if not box:
            log.critical(
                "job %s overran its max_run_time of %gs and has not stopped %gs after "
                "JobTimeout was raised in it: it is blocked in a call that cannot be "
                "interrupted. The worker exits so that its lease dies with it; the job "
                "then runs again through the orphan path.",
                ctx.job_id,
                limit,
                self.grace,
                extra=ctx.log_extra(),
            )
            if self.on_stuck is not None:
                self.on_stuck(ctx)
            return Outcome.STUCK
        first = box[0]
        detail = ctx.error_text if isinstance(first, Outcome) and ctx.error_text else ""
        if isinstance(first, BaseException):
            detail = describe_error(first)
        ctx.error_text = storable(
            f"JobTimeout: job {ctx.job_id} exceeded max_run_time of {limit:g}s\n{detail}"
        )
        ctx.timed_out = True
        if not isinstance(ctx.error, JobTimeout):
            ctx.error = JobTimeout(f"job {ctx.job_id} exceeded max_run_time of {limit:g}s")
        log.warning("job %s timed out after %gs", ctx.job_id, limit, extra=ctx.log_extra())
        return Outcome.ATTEMPT_FAILED


def _unbox(box: list[Outcome | BaseException]) -> Outcome:
    if not box:
        return Outcome.ATTEMPT_FAILED
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result


class Invoke:
    """Runs the job's hooks in Delayed::Job's order around perform (the stack's
    terminal); whatever the job raises is this attempt's failure, never an escape."""

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        error = run_hooked(ctx.job, lambda: call_next(ctx))
        if error is None:
            return Outcome.SUCCEEDED
        ctx.error = error
        ctx.error_text = describe_error(error)
        return Outcome.ATTEMPT_FAILED


def perform(ctx: WorkContext) -> Outcome:
    """The centre of the stack: the job's own work."""
    ctx.job.perform()
    return Outcome.SUCCEEDED
