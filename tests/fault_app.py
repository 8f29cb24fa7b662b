"""Pause layers for fault tests, put into the stacks from outside the library.

A worker started with ``--app tests.fault_app`` and ``TQ_PAUSE_AT=<point>`` stops dead at
that point of the worker stack (after writing a "pause" row to test_runs), so a test can
SIGKILL it there. Nothing in tomqueue itself knows about this.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from tests.jobs import record
from tomqueue.app import App
from tomqueue.worker.context import WorkContext
from tomqueue.worker.layers import LockJob, Pop
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.stack import WorkerStack

Next = Callable[[WorkContext], Outcome]
POINT = os.environ.get("TQ_PAUSE_AT", "")


def pause_here(point: str) -> None:
    record("pause", point)
    threading.Event().wait()  # until SIGKILL


class PauseBefore:
    """Stops before the next layer runs."""

    def __init__(self, point: str) -> None:
        self.point = point

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        pause_here(self.point)
        return call_next(ctx)


class PauseAfter:
    """Stops once the inner layers have returned (with ``only`` outcomes, if given)."""

    def __init__(self, point: str, only: tuple[Outcome, ...] = ()) -> None:
        self.point = point
        self.only = only

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        outcome = call_next(ctx)
        if not self.only or outcome in self.only:
            pause_here(self.point)
        return outcome


def customize(stack: WorkerStack) -> None:
    if POINT == "received_before_lock":
        stack.insert_after(Pop, PauseBefore(POINT))
    elif POINT == "finished_before_delete":
        stack.insert_after(LockJob, PauseAfter(POINT))
    elif POINT == "deleted_before_ack":
        stack.insert_after(Pop, PauseAfter(POINT, (Outcome.SUCCEEDED,)))
    elif POINT == "failure_recorded_before_wake":
        stack.insert_after(Pop, PauseAfter(POINT, (Outcome.RETRY_SCHEDULED,)))
    elif POINT:
        raise ValueError(f"unknown TQ_PAUSE_AT {POINT!r}")


def tomqueue_setup(app: App) -> None:
    """Called by tomqueue-worker with its App, once this module is imported by --app."""
    app.edit_worker_stack(customize)
