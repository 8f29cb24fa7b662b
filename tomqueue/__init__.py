"""tomqueue: background jobs that are never lost.

PostgreSQL holds every job as a row; RabbitMQ only carries the news that a row is ready.

The package face is lazy: ``import tomqueue`` (or any pure module such as
``tomqueue.admission``) loads no database or broker driver; ``tomqueue.enqueue()`` and
``tomqueue.App`` load them on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tomqueue.default_app import configure, current_settings

# the functions shadow their subpackage's name on this package: bound after it is imported
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
from tomqueue.settings import Settings

if TYPE_CHECKING:
    from tomqueue.admin import Admin
    from tomqueue.app import App
    from tomqueue.filters import Filter
    from tomqueue.job_status import JobStatus, status
    from tomqueue.middleware import Chain

_LAZY = {
    "Admin": "tomqueue.admin",
    "App": "tomqueue.app",
    "Chain": "tomqueue.middleware",
    "Filter": "tomqueue.filters",
    "JobStatus": "tomqueue.job_status",
    "status": "tomqueue.job_status",
}


def __getattr__(name: str) -> Any:
    """Load the parts that need SQLAlchemy or pika only when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tomqueue' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BULK_PRIORITY",
    "HIGH_PRIORITY",
    "LOW_PRIORITY",
    "NORMAL_PRIORITY",
    "Admin",
    "App",
    "Chain",
    "Filter",
    "Job",
    "JobStatus",
    "JobTimeout",
    "PriorityLevel",
    "Settings",
    "TomQueueError",
    "configure",
    "current_settings",
    "enqueue",
    "enqueue_many",
    "status",
]
