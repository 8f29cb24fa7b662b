"""An --app module for tests/integration/test_app.py: proves that a job enqueueing from
inside a worker goes through the worker's own App (one engine, one publisher)."""

from __future__ import annotations

import tomqueue
from tests.jobs import Record, record
from tomqueue.app import App
from tomqueue.default_app import default_app


def _parts(app: App) -> str:
    return f"app={id(app)} engine={id(app.engine)} publisher={id(app.publisher)}"


class EnqueuesChild(tomqueue.Job):
    """Enqueues a Record from inside perform, recording which App it went through."""

    def __init__(self, label: str) -> None:
        self.label = label

    def perform(self) -> None:
        record(self.label, "parent", _parts(default_app()))
        tomqueue.enqueue(Record(f"{self.label}-child"))


def tomqueue_setup(app: App) -> None:
    """Called once by tomqueue-worker with the App it runs on."""
    record("setup", "app", _parts(app))
