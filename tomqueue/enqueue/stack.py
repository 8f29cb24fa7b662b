"""The default enqueue stack, in one visible place, editable like any Chain."""

from __future__ import annotations

from tomqueue.enqueue.context import EnqueueContext
from tomqueue.enqueue.layers import Persist, PublishAfterCommit, Validate
from tomqueue.middleware import Chain

EnqueueStack = Chain[EnqueueContext, list[int]]


def default_enqueue_stack() -> EnqueueStack:
    """Validate → Persist → PublishAfterCommit, outermost first."""
    return Chain([Validate(), Persist(), PublishAfterCommit()])
