"""The default worker stack, in one visible place, editable like any Chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tomqueue.middleware import Chain
from tomqueue.tracing import TracePerform
from tomqueue.worker.context import WorkContext
from tomqueue.worker.gates import (
    ConcurrencyLimit,
    FreeKeptSlots,
    Gatekeeper,
    HandOff,
    SerialKey,
)
from tomqueue.worker.layers import (
    ErrorHandling,
    Invoke,
    LockJob,
    Pop,
    Timeout,
)
from tomqueue.worker.observe import ObserveOutcome
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.ports import DeliverySource, LeaseGate

if TYPE_CHECKING:  # the App makes these; they only need its type
    from tomqueue.app import App

WorkerStack = Chain[WorkContext, Outcome]


@dataclass(frozen=True)
class StackParts:
    """What the worker gives its stack's layers: its app (whose store, publisher and
    settings the layers are built with) and the worker's own parts."""

    runtime: App
    source: DeliverySource
    should_stop: Callable[[], bool]
    lease: LeaseGate | None = None
    on_stuck: Callable[[WorkContext], None] | None = None


def default_worker_stack(parts: StackParts) -> WorkerStack:
    """ErrorHandling → ObserveOutcome → FreeKeptSlots → Pop → LockJob → ConcurrencyLimit →
    SerialKey → Timeout → TracePerform → Invoke, outermost first (ObserveOutcome and
    TracePerform only watch: metrics, error reports, job log lines and traces).

    Applications change it through ``App.edit_worker_stack``, never by editing this.
    """
    app = parts.runtime
    keeper = Gatekeeper(app.store.gates, app.announcer, app.settings)
    stack: WorkerStack = Chain(
        [
            ErrorHandling(),
            ObserveOutcome(app.observers),
            FreeKeptSlots(keeper),
            Pop(HandOff(parts.source, keeper), app.publisher, app.settings),
            LockJob(app.store.worker, app.settings, parts.should_stop, parts.lease),
            ConcurrencyLimit(keeper),
            SerialKey(keeper),
            Timeout(grace=app.settings.timeout_grace.total_seconds(), on_stuck=parts.on_stuck),
            TracePerform(),
            Invoke(),
        ]
    )
    return stack
