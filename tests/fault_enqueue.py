"""Enqueue one job and stop dead between the row's commit and the notification's publish.

Run as ``python -m tests.fault_enqueue LABEL``; the test SIGKILLs it at the pause.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import tomqueue
from tests.fault_app import pause_here
from tests.jobs import Record
from tomqueue.default_app import default_app
from tomqueue.enqueue.context import EnqueueContext
from tomqueue.enqueue.layers import PublishAfterCommit


class PauseBeforePublish:
    def __call__(
        self, ctx: EnqueueContext, call_next: Callable[[EnqueueContext], list[int]]
    ) -> list[int]:
        print(ctx.ids[0], flush=True)
        pause_here("committed_before_publish")
        return call_next(ctx)


default_app().edit_enqueue_stack(
    lambda stack: stack.insert_before(PublishAfterCommit, PauseBeforePublish())
)
tomqueue.enqueue(Record(sys.argv[1]))
