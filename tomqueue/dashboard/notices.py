"""Notices: the one-line messages a page shows after an action redirected to it.

The redirect carries a fixed code and numbers in its query string (``?notice=retried
&job=5``), never text: a crafted link can choose among these sentences and fill in
integers, nothing more. Pure and table-tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MESSAGES = {
    "retried": ("ok", "Job {job} will run again now, with a fresh set of attempts."),
    "deleted": ("ok", "Job {job} was deleted."),
    "ran": ("ok", "Job {job} is due now."),
    "rescheduled": ("ok", "Job {job} was rescheduled."),
    "priority": ("ok", "Job {job} has its new priority."),
    "running": ("refused", "Refused: job {job} is running on a live worker. Nothing changed."),
    "gone": ("refused", "Job {job} no longer exists."),
    "bulk_retried": ("ok", "Retried {n} job(s)."),
    "bulk_deleted": ("ok", "Deleted {n} job(s)."),
}
SKIPPED = " {skipped} running job(s) were left alone."
UNANNOUNCED = " RabbitMQ was unreachable: the sweep announces the job(s) once it is back."


@dataclass(frozen=True)
class Notice:
    kind: str  # "ok" | "refused"
    text: str


def notice_from(query: Mapping[str, str]) -> Notice | None:
    """The notice a query string asks for, or None (unknown codes are ignored)."""
    code = query.get("notice", "")
    if code not in MESSAGES:
        return None
    numbers = {name: _number(query.get(name)) for name in ("job", "n", "skipped")}
    kind, text = MESSAGES[code]
    text = text.format(**numbers)
    if numbers["skipped"]:
        text += SKIPPED.format(**numbers)
    if query.get("broker") == "down":
        text += UNANNOUNCED
    return Notice(kind, text)


def _number(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() and len(value) < 20 else 0
