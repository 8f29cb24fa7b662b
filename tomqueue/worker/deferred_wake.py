"""Wake the deferred manager for a row that just became its business (a retry, a job
found not yet due), so it need not wait for its next poll."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tomqueue.broker import BROKER_FAILURES
from tomqueue.notifications import notification_for
from tomqueue.snapshot import JobSnapshot

if TYPE_CHECKING:
    from tomqueue.ports import PublisherPort
    from tomqueue.settings import Settings

log = logging.getLogger(__name__)


def wake_deferred_manager(publisher: PublisherPort, settings: Settings, row: JobSnapshot) -> None:
    """Tell the deferred manager now; if this fails it finds the row on its next poll."""
    note = notification_for(row, settings.priority_map)
    try:
        publisher.publish_deferred([note])
    except BROKER_FAILURES as exc:
        log.warning("could not wake the deferred manager for job %s: %s", note.job_id, exc)
