"""Priority levels: the four durable queues a job's integer priority maps onto."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


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


def level_for(priority: int, priority_map: Mapping[int, PriorityLevel]) -> PriorityLevel:
    """The queue for an integer priority; anything unmapped is NORMAL, as the contract says."""
    return priority_map.get(priority, PriorityLevel.NORMAL)
