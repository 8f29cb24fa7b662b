from datetime import UTC, datetime, timedelta, timezone

import pytest

from tomqueue.errors import MalformedNotificationError
from tomqueue.priority import PriorityLevel
from tomqueue.snapshot import row_digest
from tomqueue.wire import Notification, decode_notification, encode_notification

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_notification_round_trip_normalises_to_utc():
    local = T0.astimezone(timezone(timedelta(hours=5)))
    note = Notification(7, "abc", PriorityLevel.BULK, local)
    back = decode_notification(encode_notification(note))
    assert back == Notification(7, "abc", PriorityLevel.BULK, T0)
    assert back.run_at.tzinfo == UTC


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b"hello",
        b"[]",
        b'{"v": 2, "job_id": 1}',
        b'{"v": 1, "job_id": "1", "digest": "d", "level": "high", "run_at": "2026-01-01T00:00:00+00:00"}',
        b'{"v": 1, "job_id": true, "digest": "d", "level": "high", "run_at": "2026-01-01T00:00:00+00:00"}',
        b'{"v": 1, "job_id": 1, "digest": "", "level": "high", "run_at": "2026-01-01T00:00:00+00:00"}',
        b'{"v": 1, "job_id": 1, "digest": "d", "level": "urgent", "run_at": "2026-01-01T00:00:00+00:00"}',
        b'{"v": 1, "job_id": 1, "digest": "d", "level": "high", "run_at": "2026-01-01T00:00:00"}',
        b'{"v": 1, "job_id": 1, "digest": "d", "level": "high", "run_at": "soon"}',
        b"x" * 5000,
    ],
)
def test_foreign_or_corrupt_messages_are_refused(body):
    with pytest.raises(MalformedNotificationError):
        decode_notification(body)


def test_digest_changes_with_every_field_that_matters():
    base = row_digest(1, "h", T0, 0, 0)
    assert base == row_digest(1, "h", T0.astimezone(timezone(timedelta(hours=-3))), 0, 0)
    variants = [
        row_digest(2, "h", T0, 0, 0),
        row_digest(1, "h2", T0, 0, 0),
        row_digest(1, "h", T0 + timedelta(microseconds=1), 0, 0),
        row_digest(1, "h", T0, 1, 0),
        row_digest(1, "h", T0, 0, 5),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)


def test_digest_refuses_naive_times():
    with pytest.raises(ValueError):
        row_digest(1, "h", datetime(2026, 1, 1), 0, 0)
