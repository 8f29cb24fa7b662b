"""JobStatus: what ``tomqueue.status(job_id)`` returns, and the rule deriving a job's state.

State is derived, never stored, so the worker's hot path writes nothing extra for it:

| tomqueue_jobs row        | history row                         | state       |
|--------------------------|-------------------------------------|-------------|
| failed_at set            | any                                 | "failed"    |
| locked_by set            | any                                 | "working"   |
| otherwise (due, future, waiting for a retry) | any             | "queued"    |
| none                     | outcome 'succeeded', not expired    | "completed" |
| none                     | anything else, or none              | None        |

Progress and fields come from the history row (``tomqueue_job_history``) whatever the
state. Pure: ``derive_state`` and ``JobStatus`` are unit-tested from tables; ``status()``
asks the default App's store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["queued", "working", "completed", "failed"]

STATES: tuple[State, ...] = ("queued", "working", "completed", "failed")


@dataclass(frozen=True)
class JobRowFacts:
    """What the state needs from the job's row in tomqueue_jobs."""

    failed: bool
    locked: bool


@dataclass(frozen=True)
class HistoryFacts:
    """What the state needs from the job's history row."""

    outcome: str | None  # 'succeeded' | 'failed' | None while it runs
    expired: bool


def derive_state(row: JobRowFacts | None, history: HistoryFacts | None) -> State | None:
    """The job's state from its two rows (either may be missing); None: unknown or expired."""
    if row is not None:
        if row.failed:
            return "failed"
        return "working" if row.locked else "queued"
    if history is not None and history.outcome == "succeeded" and not history.expired:
        return "completed"
    return None


@dataclass(frozen=True)
class JobStatus:
    """A job's state, progress and fields, as read at one moment."""

    id: int
    state: State
    value: int | None = None
    total: int | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def progress(self) -> float | None:
        """value / total, None without a (non-zero) total."""
        if not self.total:
            return None
        return (self.value or 0) / self.total

    @property
    def queued(self) -> bool:
        return self.state == "queued"

    @property
    def working(self) -> bool:
        return self.state == "working"

    @property
    def completed(self) -> bool:
        return self.state == "completed"

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"id", "state", "progress", "value", "total", **fields}`` (the
        fields cannot override the first five: those names are refused as fields)."""
        own: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "progress": self.progress,
            "value": self.value,
            "total": self.total,
        }
        own.update((key, value) for key, value in self.fields.items() if key not in own)
        return own


def status(job_id: int) -> JobStatus | None:
    """The status of job ``job_id`` (``tomqueue.status``): None if unknown or expired."""
    from tomqueue.default_app import default_app

    return default_app().status(job_id)
