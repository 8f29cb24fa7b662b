"""Filter: which jobs an operator means, and the SQL parameters that select them.

Pure and table-tested. A Filter names a state and any of class, queue, error text and
priority; the store runs one constant statement per state (``statements.LIST_PAGE`` and
friends, so that each state's predicate can use its partial index) with the parameters
``filter_params`` builds here. Text the operator types is matched as text: ``%``, ``_``
and ``\\`` in it are escaped, never treated as LIKE wildcards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tomqueue.job import PRIORITY_RANGE
from tomqueue.queues import DEFAULT_QUEUE  # filters mean queue IS NULL by it, as --queues does
from tomqueue.snapshot import JobSnapshot

__all__ = ["DEFAULT_QUEUE", "Filter", "State", "filter_params", "like_escape", "state_of"]


class State(StrEnum):
    """Where a job stands. A row is in exactly one of the first four."""

    QUEUED = "queued"  # pending, unlocked and due: waiting for a worker
    SCHEDULED = "scheduled"  # pending, unlocked, run_at in the future (a retry's too)
    RUNNING = "running"  # locked by a worker (a dead one's lock until the sweep takes it)
    FAILED = "failed"  # failed for good: waits for a person
    PENDING = "pending"  # a filter only: any of queued, scheduled, running


def state_of(row: JobSnapshot, now: datetime) -> State:
    """The state of one row at ``now`` (the database clock, read with the row)."""
    if row.failed_at is not None:
        return State.FAILED
    if row.locked_by is not None:
        return State.RUNNING
    if row.run_at > now:
        return State.SCHEDULED
    return State.QUEUED


@dataclass(frozen=True)
class Filter:
    """Which jobs: every field left None matches everything.

    ``class_name`` matches the full class name (``myapp.jobs.SendInvoice``) or its last
    dotted parts (``SendInvoice``, ``jobs.SendInvoice``); ``queue="default"`` means the jobs
    with no named queue; ``error`` is a case-insensitive substring of ``last_error`` or of
    the handler (the job's class and arguments).
    """

    state: State | None = None
    class_name: str | None = None
    queue: str | None = None
    error: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        if self.state is not None:
            object.__setattr__(self, "state", State(self.state))  # "failed" -> State.FAILED
        for name in ("class_name", "queue", "error"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"Filter.{name} must be a non-empty string or None")
        if self.priority is not None and not (
            isinstance(self.priority, int)
            and not isinstance(self.priority, bool)
            and PRIORITY_RANGE[0] <= self.priority <= PRIORITY_RANGE[1]
        ):
            raise ValueError(f"Filter.priority must be a 32-bit integer, got {self.priority!r}")

    @property
    def statement_key(self) -> str:
        """Which of the per-state statements selects these jobs."""
        return "all" if self.state is None else self.state.value

    def describe(self) -> str:
        """The filter as an operator would type it, e.g. ``--state failed --class X``."""
        parts = [
            f"--{flag} {value}"
            for flag, value in (
                ("state", self.state),
                ("class", self.class_name),
                ("queue", self.queue),
                ("error", self.error),
                ("priority", self.priority),
            )
            if value is not None
        ]
        return " ".join(parts) or "all jobs"


def like_escape(text: str) -> str:
    """``text`` as a LIKE pattern matching exactly itself (backslash is LIKE's escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_params(where: Filter) -> dict[str, object]:
    """The parameters of ``statements.FILTER_GUARDS`` for ``where`` (None: no condition)."""
    name = where.class_name
    return {
        "class_name": name,
        "class_suffix": None if name is None else "%." + like_escape(name),
        "queue": where.queue,
        "queue_default": where.queue == DEFAULT_QUEUE,
        "error": None if where.error is None else "%" + like_escape(where.error) + "%",
        "priority": where.priority,
    }
