"""tomqueue's side of the benchmark: a Job whose perform() is the shared job body."""

from __future__ import annotations

import tomqueue
from bench.results import insert_result


class InsertResult(tomqueue.Job):
    def __init__(self, key: int, sent: float) -> None:
        self.key = key
        self.sent = sent

    def perform(self) -> None:
        insert_result(self.key, self.sent)
