"""tomqueue: background jobs that are never lost.

PostgreSQL holds every job as a row; RabbitMQ only carries the news that a row is ready.
"""

from tomqueue.enqueue import enqueue, enqueue_many
from tomqueue.errors import JobTimeout, TomQueueError
from tomqueue.job import Job
from tomqueue.priority import (
    BULK_PRIORITY,
    HIGH_PRIORITY,
    LOW_PRIORITY,
    NORMAL_PRIORITY,
    PriorityLevel,
)
from tomqueue.settings import Settings, configure, current_settings

__all__ = [
    "BULK_PRIORITY",
    "HIGH_PRIORITY",
    "LOW_PRIORITY",
    "NORMAL_PRIORITY",
    "Job",
    "JobTimeout",
    "PriorityLevel",
    "Settings",
    "TomQueueError",
    "configure",
    "current_settings",
    "enqueue",
    "enqueue_many",
]
