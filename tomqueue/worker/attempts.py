"""Attempts: the runs this worker process has in flight, each with a name of its own.

Every turn of a slot gets a fresh ``locked_by`` ("host pid:1 key:2 run:3") before it looks
at a row, and gives it up once the outcome is written. The row's lock names the attempt,
not just the process, so a run whose row was taken over can never delete or fail the row
under a newer run, and a lock that committed while its reply was lost is recognised. The
worker's own sweep unlocks rows that carry this worker's lease but no attempt in flight
(a lock whose reply never came back, an outcome that could not be written): those would
otherwise stay locked by a live lease forever.
"""

from __future__ import annotations

import itertools
import threading


class Attempts:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def begin(self, worker_name: str) -> str:
        name = f"{worker_name} run:{next(self._counter)}"
        with self._lock:
            self._in_flight.add(name)
        return name

    def end(self, name: str) -> None:
        with self._lock:
            self._in_flight.discard(name)

    def in_flight(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._in_flight)
