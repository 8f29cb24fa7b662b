"""DeferredSchedule: the jobs coming due soon, sorted by run_at (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime

from sortedcontainers import SortedList

from tomqueue.wire import Notification


class DeferredSchedule:
    """Holds at most one notification per job, ordered by (run_at, job id).

    A newer notification for the same job replaces the older one, so a job rescheduled
    while it waits is released at its new time, once.
    """

    def __init__(self) -> None:
        self._order: SortedList = SortedList()
        self._by_id: dict[int, Notification] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._by_id

    def add(self, note: Notification) -> bool:
        """Hold ``note``; returns False if exactly this notification was already held."""
        held = self._by_id.get(note.job_id)
        if held == note:
            return False
        if held is not None:
            self._order.remove((held.run_at, held.job_id))
        self._by_id[note.job_id] = note
        self._order.add((note.run_at, note.job_id))
        return True

    def discard(self, job_id: int) -> None:
        held = self._by_id.pop(job_id, None)
        if held is not None:
            self._order.remove((held.run_at, held.job_id))

    def next_run_at(self) -> datetime | None:
        return self._order[0][0] if self._order else None

    def pop_due(self, now: datetime, limit: int | None = None) -> list[Notification]:
        """Remove and return every notification with run_at <= now, earliest first."""
        due: list[Notification] = []
        while self._order and self._order[0][0] <= now:
            if limit is not None and len(due) >= limit:
                break
            _, job_id = self._order.pop(0)
            due.append(self._by_id.pop(job_id))
        return due

    def put_back(self, notes: list[Notification]) -> None:
        """Return notifications that could not be published, unless replaced meanwhile."""
        for note in notes:
            if note.job_id not in self._by_id:
                self.add(note)

    def clear(self) -> None:
        self._order.clear()
        self._by_id.clear()
