"""The notification wire format: JSON carrying a job id and digest, never the job itself."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from tomqueue.errors import MalformedNotificationError
from tomqueue.priority import PriorityLevel
from tomqueue.queues import is_queue_name

WIRE_VERSION = 1
CONTENT_TYPE = "application/vnd.tomqueue.notification+json"
MAX_MESSAGE_BYTES = 4096


@dataclass(frozen=True)
class Notification:
    """ "Job ``job_id`` in the state ``digest`` is due at ``run_at`` on ``level`` of its
    named ``queue`` (None: the default queue)."""

    job_id: int
    digest: str
    level: PriorityLevel
    run_at: datetime
    queue: str | None = None


def encode_notification(note: Notification) -> bytes:
    document = {
        "v": WIRE_VERSION,
        "job_id": note.job_id,
        "digest": note.digest,
        "level": note.level.value,
        "run_at": note.run_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    if note.queue is not None:  # a default-queue message stays as it always was
        document["queue"] = note.queue
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def decode_notification(body: bytes) -> Notification:
    """Parse a message body; anything foreign, corrupt or hostile raises
    MalformedNotificationError and nothing else.

    The size is checked before any parsing, so a huge body costs no CPU; every error the
    parser can raise (deep nesting is a RecursionError, a date at the edge of the calendar
    an OverflowError) is turned into the one error the consumers know how to drop.
    """
    if len(body) > MAX_MESSAGE_BYTES:
        raise MalformedNotificationError(f"message of {len(body)} bytes is too large")
    try:
        return _decode(body)
    except MalformedNotificationError:
        raise
    except Exception as exc:  # RecursionError, OverflowError, MemoryError: all hostile
        raise MalformedNotificationError(
            f"message could not be parsed ({type(exc).__name__}: {_clip(str(exc))})"
        ) from exc


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


_DIGEST = re.compile(r"[0-9a-f]{1,64}")
MAX_JOB_ID = 2**63 - 1  # the bigint primary key's range


def _decode(body: bytes) -> Notification:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedNotificationError(f"message is not JSON: {_clip(str(exc))}") from exc
    if not isinstance(document, dict) or document.get("v") != WIRE_VERSION:
        raise MalformedNotificationError("message is not a tomqueue notification (no v=1)")
    job_id = document.get("job_id")
    digest = document.get("digest")
    level = document.get("level")
    run_at = document.get("run_at")
    queue = document.get("queue")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id <= MAX_JOB_ID:
        raise MalformedNotificationError(
            f"job_id must be a positive 64-bit integer, got {_clip(repr(job_id))}"
        )
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise MalformedNotificationError("digest must be a short lowercase hex string")
    if not isinstance(level, str):
        raise MalformedNotificationError(f"level must be a string, got {_clip(repr(level))}")
    try:
        parsed_level = PriorityLevel(level)
    except ValueError as exc:
        raise MalformedNotificationError(f"unknown priority level {_clip(repr(level))}") from exc
    if not isinstance(run_at, str):
        raise MalformedNotificationError("run_at must be an ISO-8601 string")
    try:
        parsed_run_at = datetime.fromisoformat(run_at)
    except ValueError as exc:
        raise MalformedNotificationError(f"run_at is not ISO-8601: {_clip(repr(run_at))}") from exc
    if parsed_run_at.tzinfo is None:
        raise MalformedNotificationError("run_at must carry a timezone")
    try:
        in_utc = parsed_run_at.astimezone(UTC)
    except OverflowError as exc:
        raise MalformedNotificationError(f"run_at is out of range: {_clip(run_at)}") from exc
    if queue is not None and not is_queue_name(queue):
        raise MalformedNotificationError(f"queue is not a queue name: {_clip(repr(queue))}")
    return Notification(job_id, digest, parsed_level, in_utc, queue)
