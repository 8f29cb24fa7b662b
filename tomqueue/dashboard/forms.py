"""Forms: what the dashboard's query strings and posted forms mean, checked.

Pure and table-tested. Every value a person types is validated here and turned into the
admin service's own types (``Filter``, a datetime or timedelta, a priority); a bad value
becomes a ``FormError`` whose message the page shows, never a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from tomqueue.filters import Filter, State
from tomqueue.job import PRIORITY_RANGE

FILTER_FIELDS = ("state", "class", "queue", "error", "priority")
MAX_RESCHEDULE = timedelta(days=3650)


class FormError(ValueError):
    """A value typed into the dashboard that cannot be used; the message says why."""


@dataclass(frozen=True)
class ListQuery:
    """The jobs page's query: a filter and where the keyset page starts."""

    where: Filter
    after: int | None

    def params(self, after: int | None = None) -> str:
        """The query string of this filter (and a page start), for links and forms."""
        return urlencode(
            [(key, value) for key, value in filter_fields(self.where).items() if value]
            + ([("after", str(after))] if after is not None else [])
        )


def filter_fields(where: Filter) -> dict[str, str]:
    """A filter as the form fields that give it back (empty: not set)."""
    return {
        "state": "" if where.state is None else where.state.value,
        "class": where.class_name or "",
        "queue": where.queue or "",
        "error": where.error or "",
        "priority": "" if where.priority is None else str(where.priority),
    }


def parse_filter(fields: Mapping[str, str]) -> Filter:
    """A Filter from form or query fields named as ``FILTER_FIELDS``; blank means unset."""

    def text(name: str) -> str | None:
        value = fields.get(name, "").strip()
        return value or None

    state = text("state")
    if state is not None and state not in {s.value for s in State}:
        raise FormError(f"unknown state {state!r}: choose one of the list")
    priority = text("priority")
    try:
        return Filter(
            state=None if state is None else State(state),
            class_name=text("class"),
            queue=text("queue"),
            error=text("error"),
            priority=None if priority is None else parse_priority(priority),
        )
    except ValueError as exc:
        raise FormError(str(exc)) from exc


def parse_list_query(fields: Mapping[str, str]) -> ListQuery:
    after = fields.get("after", "").strip()
    if after and not after.isdigit():
        raise FormError("after must be a job id")
    return ListQuery(parse_filter(fields), int(after) if after else None)


def parse_priority(value: str) -> int:
    try:
        priority = int(value.strip())
    except ValueError:
        raise FormError(f"priority must be a whole number, got {value!r}") from None
    low, high = PRIORITY_RANGE
    if not low <= priority <= high:
        raise FormError(f"priority must be between {low} and {high}")
    return priority


def parse_reschedule(at: str, in_seconds: str) -> datetime | timedelta:
    """When to run a job: ``at`` an ISO time (without an offset it is UTC; the browser's
    ``datetime-local`` input gives that form), or ``in_seconds`` from now. One of them."""
    at, in_seconds = at.strip(), in_seconds.strip()
    if bool(at) == bool(in_seconds):
        raise FormError("give either a time or a number of seconds from now")
    if in_seconds:
        try:
            seconds = float(in_seconds)
        except ValueError:
            raise FormError(f"seconds must be a number, got {in_seconds!r}") from None
        if not 0 <= seconds <= MAX_RESCHEDULE.total_seconds():
            raise FormError("seconds must be between 0 and ten years")
        return timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise FormError(f"not a time: {at!r} (use 2026-12-31T09:30, UTC)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_job_id(value: str) -> int:
    if not value.isdigit() or len(value) > 19:
        raise FormError(f"not a job id: {value!r}")
    return int(value)
