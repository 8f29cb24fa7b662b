"""The job store: every SQL statement tomqueue runs against its tables, split by caller.

``statements`` holds the SQL, ``executor`` the connections; each caller has its own small
class (``EnqueueStore``, ``WorkerStore``, ``AdminStore``, ``OverviewStore``,
``DeferredStore``, ``SweepStore``, ``StatusStore``, ``CronStore``, ``GateStore``). Methods
return plain values
(``JobSnapshot``, ``JobStatus``), never live ORM objects, and each is one short transaction
at most: none stays open while a job runs.
"""

from __future__ import annotations

from sqlalchemy import Engine

from tomqueue.store.admin import AdminStore
from tomqueue.store.cron import CronStore
from tomqueue.store.deferred import DeferredStore
from tomqueue.store.enqueue import EnqueueStore
from tomqueue.store.executor import Executor
from tomqueue.store.gates import GateStore
from tomqueue.store.overview import OverviewStore
from tomqueue.store.status import StatusStore
from tomqueue.store.sweep import SweepStore
from tomqueue.store.worker import WorkerStore


class JobStore:
    """The per-caller stores over one Engine, sharing one Executor (so the worker's
    per-thread hot connections are made once per store)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.executor = Executor(engine)
        self.enqueue = EnqueueStore(self.executor)
        self.worker = WorkerStore(self.executor)
        self.admin = AdminStore(self.executor)
        self.overview = OverviewStore(self.executor)
        self.deferred = DeferredStore(self.executor)
        self.sweep = SweepStore(self.executor)
        self.status = StatusStore(self.executor)
        self.cron = CronStore(self.executor)
        self.gates = GateStore(self.executor)


__all__ = [
    "AdminStore",
    "CronStore",
    "DeferredStore",
    "EnqueueStore",
    "GateStore",
    "JobStore",
    "OverviewStore",
    "StatusStore",
    "SweepStore",
    "WorkerStore",
]
