"""The default worker stack, in one visible place, editable like any Chain."""

from __future__ import annotations

from collections.abc import Callable

from tomqueue.middleware import Chain
from tomqueue.runtime import Runtime
from tomqueue.worker.context import WorkContext
from tomqueue.worker.layers import DeliverySource, ErrorHandling, Invoke, LockJob, Pop, Timeout
from tomqueue.worker.outcome import Outcome

WorkerStack = Chain[WorkContext, Outcome]


def default_worker_stack(
    runtime: Runtime, source: DeliverySource, should_stop: Callable[[], bool]
) -> WorkerStack:
    """ErrorHandling → Pop → LockJob → Timeout → Invoke, outermost first."""
    return Chain(
        [
            ErrorHandling(),
            Pop(source),
            LockJob(runtime, should_stop),
            Timeout(),
            Invoke(),
        ]
    )
