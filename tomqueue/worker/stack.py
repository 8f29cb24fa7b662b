"""The default worker stack, in one visible place, editable like any Chain."""

from __future__ import annotations

from collections.abc import Callable

from tomqueue.middleware import Chain
from tomqueue.runtime import Runtime
from tomqueue.worker.context import WorkContext
from tomqueue.worker.layers import DeliverySource, ErrorHandling, Invoke, LockJob, Pop, Timeout
from tomqueue.worker.outcome import Outcome

WorkerStack = Chain[WorkContext, Outcome]

# Functions called with every worker stack once built: an application (or a fault test,
# imported with --app) can insert or remove layers without touching library code.
stack_customizers: list[Callable[[WorkerStack], None]] = []


def default_worker_stack(
    runtime: Runtime, source: DeliverySource, should_stop: Callable[[], bool]
) -> WorkerStack:
    """ErrorHandling → Pop → LockJob → Timeout → Invoke, outermost first."""
    stack: WorkerStack = Chain(
        [
            ErrorHandling(),
            Pop(source, runtime),
            LockJob(runtime, should_stop),
            Timeout(),
            Invoke(),
        ]
    )
    for customize in stack_customizers:
        customize(stack)
    return stack
