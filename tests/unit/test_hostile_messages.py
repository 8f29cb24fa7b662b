"""Every kind of hostile or corrupt AMQP body is refused with the one error consumers drop.

docs/reliability.md lists these kinds; tests/integration/test_hostile_input.py sends them to
a real worker and a real deferred manager.
"""

import pytest

from tomqueue.errors import MalformedNotificationError
from tomqueue.wire import MAX_MESSAGE_BYTES, decode_notification

GOOD_TAIL = b'"digest": "abc123", "level": "high", "run_at": "2026-01-01T00:00:00+00:00"}'

HOSTILE_BODIES = {
    "empty": b"",
    "not utf-8": b"\xff\xfe\xfa",
    "not json": b"hello",
    "json array": b"[1, 2]",
    "deeply nested": b"[" * 4000,
    "wrong version": b'{"v": 2, "job_id": 1}',
    "job_id as text": b'{"v": 1, "job_id": "1", ' + GOOD_TAIL,
    "job_id beyond bigint": b'{"v": 1, "job_id": 18446744073709551616, ' + GOOD_TAIL,
    "job_id negative": b'{"v": 1, "job_id": -5, ' + GOOD_TAIL,
    "job_id NaN": b'{"v": 1, "job_id": NaN, ' + GOOD_TAIL,
    "job_id of 4000 digits": b'{"v": 1, "job_id": ' + b"9" * 4000 + b"}",
    "digest with NUL": b'{"v": 1, "job_id": 1, "digest": "ab\\u0000", "level": "high", '
    b'"run_at": "2026-01-01T00:00:00+00:00"}',
    "unknown level": b'{"v": 1, "job_id": 1, "digest": "ab", "level": "urgent", '
    b'"run_at": "2026-01-01T00:00:00+00:00"}',
    "naive run_at": b'{"v": 1, "job_id": 1, "digest": "ab", "level": "high", '
    b'"run_at": "2026-01-01T00:00:00"}',
    "run_at before year 1 in UTC": b'{"v": 1, "job_id": 1, "digest": "ab", "level": "high", '
    b'"run_at": "0001-01-01T00:00:00+14:00"}',
    "run_at after year 9999 in UTC": b'{"v": 1, "job_id": 1, "digest": "ab", "level": "high", '
    b'"run_at": "9999-12-31T23:59:59-14:00"}',
    "run_at garbage": b'{"v": 1, "job_id": 1, "digest": "ab", "level": "high", "run_at": "soon"}',
    "oversize": b"x" * (MAX_MESSAGE_BYTES + 1),
    "100 MB body": b"{" + b" " * (100 * 1024 * 1024),
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_bodies_raise_only_malformed(body):
    with pytest.raises(MalformedNotificationError):
        decode_notification(body)
