"""Priority levels: the four durable queues a job's integer priority maps onto."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from enum import StrEnum

log = logging.getLogger(__name__)


class PriorityLevel(StrEnum):
    """One of the four queues; workers always drain a higher level first."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"
    BULK = "bulk"

    @property
    def rank(self) -> int:
        """0 for HIGH up to 3 for BULK: the order in which workers look."""
        return LEVELS_IN_ORDER.index(self)


HIGH_PRIORITY = PriorityLevel.HIGH
NORMAL_PRIORITY = PriorityLevel.NORMAL
LOW_PRIORITY = PriorityLevel.LOW
BULK_PRIORITY = PriorityLevel.BULK

LEVELS_IN_ORDER: tuple[PriorityLevel, ...] = (
    PriorityLevel.HIGH,
    PriorityLevel.NORMAL,
    PriorityLevel.LOW,
    PriorityLevel.BULK,
)


def default_level(priority: int) -> PriorityLevel:
    """Delayed::Job's meaning without a ``priority_map``: lower numbers run first.

    0 is Delayed::Job's default priority, so it is NORMAL; anything below runs before it,
    small positive numbers after it, and 10 or more is background work that waits for all
    the rest.
    """
    if priority < 0:
        return PriorityLevel.HIGH
    if priority == 0:
        return PriorityLevel.NORMAL
    if priority < 10:
        return PriorityLevel.LOW
    return PriorityLevel.BULK


class _WarnOnce:
    """Remembers which unmapped priorities were already reported, across threads.

    A misconfigured map would otherwise log one line per job; a priority is reported the
    first time any thread meets it, and never again in this process.
    """

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def first_time(self, priority: int) -> bool:
        if priority in self._seen:  # the common case, without taking the lock
            return False
        with self._lock:
            if priority in self._seen:
                return False
            self._seen.add(priority)
            return True


_unmapped = _WarnOnce()


def level_for(priority: int, priority_map: Mapping[int, PriorityLevel]) -> PriorityLevel:
    """The queue for an integer priority.

    With no map (an empty one counts as none), Delayed::Job's order (``default_level``).
    A configured map replaces that default entirely: a priority it does not name is
    NORMAL, with a warning the first time, since it is most likely a missing entry.
    """
    if not priority_map:
        return default_level(priority)
    level = priority_map.get(priority)
    if level is not None:
        return level
    if _unmapped.first_time(priority):
        log.warning("priority %s is not in priority_map; it runs at NORMAL", priority)
    return PriorityLevel.NORMAL
