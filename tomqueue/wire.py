"""The notification wire format: JSON carrying a job id and digest, never the job itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from tomqueue.errors import MalformedNotificationError
from tomqueue.priority import PriorityLevel

WIRE_VERSION = 1
CONTENT_TYPE = "application/vnd.tomqueue.notification+json"
MAX_MESSAGE_BYTES = 4096


@dataclass(frozen=True)
class Notification:
    """ "Job ``job_id`` in the state ``digest`` is due at ``run_at`` on ``level``."""

    job_id: int
    digest: str
    level: PriorityLevel
    run_at: datetime


def encode_notification(note: Notification) -> bytes:
    document = {
        "v": WIRE_VERSION,
        "job_id": note.job_id,
        "digest": note.digest,
        "level": note.level.value,
        "run_at": note.run_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def decode_notification(body: bytes) -> Notification:
    """Parse a message body; anything foreign or corrupt raises MalformedNotificationError."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise MalformedNotificationError(f"message of {len(body)} bytes is too large")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedNotificationError(f"message is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("v") != WIRE_VERSION:
        raise MalformedNotificationError("message is not a tomqueue notification (no v=1)")
    job_id = document.get("job_id")
    digest = document.get("digest")
    level = document.get("level")
    run_at = document.get("run_at")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id <= 0:
        raise MalformedNotificationError(f"job_id must be a positive integer, got {job_id!r}")
    if not isinstance(digest, str) or not digest:
        raise MalformedNotificationError("digest must be a non-empty string")
    if not isinstance(level, str):
        raise MalformedNotificationError(f"level must be a string, got {level!r}")
    try:
        parsed_level = PriorityLevel(level)
    except ValueError as exc:
        raise MalformedNotificationError(f"unknown priority level {level!r}") from exc
    if not isinstance(run_at, str):
        raise MalformedNotificationError("run_at must be an ISO-8601 string")
    try:
        parsed_run_at = datetime.fromisoformat(run_at)
    except ValueError as exc:
        raise MalformedNotificationError(f"run_at is not ISO-8601: {run_at!r}") from exc
    if parsed_run_at.tzinfo is None:
        raise MalformedNotificationError("run_at must carry a timezone")
    return Notification(job_id, digest, parsed_level, parsed_run_at.astimezone(UTC))
