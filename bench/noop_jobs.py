"""A job that does nothing, so a profile of the worker shows the worker, not the job."""

from __future__ import annotations

import tomqueue


class Noop(tomqueue.Job):
    def __init__(self, n: int) -> None:
        self.n = n

    def perform(self) -> None:
        """Nothing: the cost measured is tomqueue's own per job."""
