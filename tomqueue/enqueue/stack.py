"""The default enqueue stack, in one visible place, editable like any Chain."""

from __future__ import annotations

from tomqueue.enqueue.context import EnqueueContext
from tomqueue.enqueue.layers import Persist, PublishAfterCommit, Validate
from tomqueue.middleware import Chain
from tomqueue.tracing import TraceEnqueue

EnqueueStack = Chain[EnqueueContext, list[int]]


def default_enqueue_stack() -> EnqueueStack:
    """Validate → TraceEnqueue → Persist → PublishAfterCommit, outermost first
    (TraceEnqueue only watches: it stores the trace context in the rows)."""
    return Chain([Validate(), TraceEnqueue(), Persist(), PublishAfterCommit()])
