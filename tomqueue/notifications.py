"""Turning rows into notifications: the one place that knows a row's digest and level."""

from __future__ import annotations

from collections.abc import Mapping

from tomqueue.priority import PriorityLevel, level_for
from tomqueue.snapshot import JobSnapshot
from tomqueue.wire import Notification


def notification_for(row: JobSnapshot, priority_map: Mapping[int, PriorityLevel]) -> Notification:
    return Notification(
        job_id=row.id,
        digest=row.digest,
        level=level_for(row.priority, priority_map),
        run_at=row.run_at,
        queue=row.queue,
    )
