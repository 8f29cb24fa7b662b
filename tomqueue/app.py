"""App: the composition root. One per process, built from Settings, owning every part.

An App owns the database engine, the job store, the publisher, the enqueue stack and the
edits applied to every worker stack it builds, and makes the long-running processes
(``worker()``, ``deferred_manager()``). Nothing connects until first use. A worker
process builds one App and installs it as the process's default, so a job that enqueues
from inside ``perform`` shares the worker's engine and broker connection instead of
opening a second set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tomqueue.announcer import Announcer
from tomqueue.broker import Publisher, Topology
from tomqueue.database import make_engine, retry_on_disconnect
from tomqueue.enqueue.context import EnqueueContext
from tomqueue.enqueue.layers import leave_for_sweep
from tomqueue.enqueue.stack import EnqueueStack, default_enqueue_stack
from tomqueue.exception_reports import ExceptionReports, resolve_reporter
from tomqueue.job import Job
from tomqueue.job_status import JobStatus
from tomqueue.observers import Observers
from tomqueue.prefix_binding import require_prefix
from tomqueue.settings import Settings
from tomqueue.store import JobStore
from tomqueue.wire import Notification

if TYPE_CHECKING:
    from tomqueue.deferred.manager import DeferredManager
    from tomqueue.enqueue.caller import CallerTransaction
    from tomqueue.worker.process import Worker
    from tomqueue.worker.stack import StackParts, WorkerStack

StackEdit = Callable[["WorkerStack"], None]
log = logging.getLogger(__name__)


class App:
    """Long-lived resources and the two stacks for one set of settings."""

    def __init__(self, settings: Settings, pool_size: int = 5) -> None:
        self.settings = settings
        self.topology = Topology(settings.prefix)
        self.pool_size = pool_size
        self.enqueue_stack: EnqueueStack = default_enqueue_stack()
        self._worker_stack_edits: list[StackEdit] = []
        self._prefix_bound = False
        self._prefix_lock = threading.Lock()

    # -- parts -----------------------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url, pool_size=self.pool_size)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.engine)

    @cached_property
    def publisher(self) -> Publisher:
        return Publisher(self.settings)

    @cached_property
    def announcer(self) -> Announcer:
        """Announces enqueued rows from a background thread (its own connection)."""
        return Announcer(self.settings, give_up=self.leave_for_sweep)

    @cached_property
    def observers(self) -> Observers:
        """Who hears how jobs end (tomqueue.observers): the exception reporter of the
        settings, if any, and whatever ``observers.add`` adds (the metrics of
        ``--metrics-port``, an application's own)."""
        observers = Observers()
        reporter = resolve_reporter(self.settings.exception_reporter)
        if reporter is not None:
            observers.add(ExceptionReports(reporter, self.settings.report_every_attempt))
        return observers

    def leave_for_sweep(self, notes: Sequence[Notification]) -> None:
        """Mark rows whose announcement failed unreleased, for the sweep to announce
        (``tomqueue.enqueue.layers.leave_for_sweep``)."""
        leave_for_sweep(self.store.enqueue, notes)

    # -- the stacks ------------------------------------------------------------------------

    def edit_enqueue_stack(self, edit: Callable[[EnqueueStack], None]) -> None:
        """Change this app's enqueue stack (insert_before/after, remove, ...), now."""
        edit(self.enqueue_stack)

    def edit_worker_stack(self, edit: StackEdit) -> None:
        """Apply ``edit`` to every worker stack this app builds from now on.

        A worker stack is built per worker, because its layers hold that worker's parts
        (its message source, its lease), so the edit is kept and replayed, in order.
        """
        self._worker_stack_edits.append(edit)

    def build_worker_stack(self, parts: StackParts) -> WorkerStack:
        """The default worker stack with this app's edits applied."""
        from tomqueue.worker.stack import default_worker_stack

        stack = default_worker_stack(parts)
        for edit in self._worker_stack_edits:
            edit(stack)
        return stack

    # -- enqueueing ------------------------------------------------------------------------

    def enqueue_many(
        self,
        jobs: Iterable[Job],
        priority: int | None = None,
        run_at: datetime | None = None,
        queue: str | None = None,
        session: Session | None = None,
        wait_for_broker: bool | None = None,
        caller: CallerTransaction | None = None,
    ) -> list[int]:
        """Enqueue several jobs in one transaction through this app's enqueue stack.

        ``caller`` is a transaction that is not SQLAlchemy's (``tomqueue.enqueue.caller``;
        the Django backend's), in place of ``session``.
        """
        ctx = EnqueueContext(
            jobs=list(jobs),
            app=self,
            priority=priority,
            run_at=run_at,
            queue=queue,
            session=session,
            caller=caller,
            wait_for_broker=(
                self.settings.wait_for_broker if wait_for_broker is None else wait_for_broker
            ),
        )
        return self.enqueue_stack.invoke(ctx, _ids)

    # -- status ----------------------------------------------------------------------------

    def status(self, job_id: int) -> JobStatus | None:
        """Job ``job_id``'s state, progress and fields; None if unknown or expired."""
        return self.store.status.read(job_id)

    # -- the processes ---------------------------------------------------------------------

    def worker(self, concurrency: int = 1, max_jobs: int | None = None) -> Worker:
        """A worker that runs this app's jobs through this app's worker stack."""
        from tomqueue.worker.process import Worker

        return Worker(self, concurrency=concurrency, max_jobs=max_jobs)

    def deferred_manager(self) -> DeferredManager:
        from tomqueue.deferred.manager import DeferredManager

        return DeferredManager(self)

    # -- lifecycle -------------------------------------------------------------------------

    def ensure_prefix_bound(
        self, attempts: int | None = 3, should_stop: Callable[[], bool] | None = None
    ) -> None:
        """Refuse (ConfigurationError) a database whose jobs belong to another prefix.

        Once per App, so it costs each process one round trip: the first call claims
        an unbound database for this prefix (tomqueue/prefix_binding.py); later calls
        return at once. Retried while the database is unreachable, ``attempts=None``
        until it answers (processes starting up), as other database calls are.
        """
        if self._prefix_bound:
            return
        with self._prefix_lock:
            if self._prefix_bound:
                return
            retry_on_disconnect(
                lambda: require_prefix(self.engine, self.settings.prefix),
                "check which prefix the database belongs to",
                self.settings.database_url,
                attempts=attempts,
                should_stop=should_stop,
            )
            self._prefix_bound = True

    def close(self) -> None:
        """Flush pending announcements (bounded), then close the connections."""
        if "announcer" in self.__dict__:
            self.announcer.close()
        if "publisher" in self.__dict__:
            self.publisher.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def _ids(ctx: EnqueueContext) -> list[int]:
    return ctx.ids
