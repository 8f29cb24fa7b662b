"""Formatting: how the pages write times, ages, durations and a job's handler. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta


def when(moment: datetime | None) -> str:
    """A moment in UTC to the second (``2026-12-05 03:10:22 UTC``); a dash for none."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(span: timedelta | float | None) -> str:
    """A span as a person says it: ``850 ms``, ``42 s``, ``3 min 5 s``, ``2 h 4 min``,
    ``3 d 2 h``; a dash for none."""
    if span is None:
        return "—"
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        return f"{sign}{round(seconds * 1000)} ms"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h" if hours else f"{days} d"
    elif hours:
        text = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    elif minutes:
        text = f"{minutes} min {secs} s" if secs else f"{minutes} min"
    else:
        text = f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    return sign + text


def relative(moment: datetime | None, now: datetime) -> str:
    """``in 5 min`` or ``3 s ago`` against ``now`` (the database clock)."""
    if moment is None:
        return "—"
    span = moment - now
    if abs(span.total_seconds()) < 1:
        return "now"
    return f"in {duration(span)}" if span > timedelta(0) else f"{duration(-span)} ago"


def pretty_handler(handler: str) -> str:
    """The job's stored JSON indented for reading (as stored, if it is not JSON)."""
    try:
        return json.dumps(json.loads(handler), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return handler


def short_class(class_name: str) -> str:
    """``SendInvoice`` of ``myapp.jobs.SendInvoice``: for tables, with the full name in
    the cell's title."""
    return class_name.rsplit(".", 1)[-1]
