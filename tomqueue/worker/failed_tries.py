"""FailedTries: how often a message failed before its row was locked, bounded in memory.

Pop requeues such a message a few times, then drops it to the row's truth (the sweep
announces the row again if it still needs running), so a message that always fails
cannot loop for ever; this counts the tries, keyed by the message body.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class FailedTries:
    """How often each message body has failed before its row was locked (bounded)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._tries: OrderedDict[bytes, int] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def count(self, body: bytes) -> int:
        with self._lock:
            tries = self._tries.pop(body, 0) + 1
            self._tries[body] = tries
            while len(self._tries) > self._capacity:
                self._tries.popitem(last=False)
            return tries

    def forget(self, body: bytes) -> None:
        with self._lock:
            self._tries.pop(body, None)
