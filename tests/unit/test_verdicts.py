from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tomqueue.snapshot import JobSnapshot
from tomqueue.verdicts import LockedVerdict, verdict_for_locked

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ROW = JobSnapshot(
    id=7, priority=0, attempts=0, handler="{}", last_error=None, run_at=NOW,
    locked_at=NOW, locked_by="w run:1", failed_at=None, queue=None,
    created_at=NOW, updated_at=NOW, lock_key=3,
)  # fmt: skip


@pytest.mark.parametrize(
    ("attempts", "crashes", "expected"),
    [
        (0, 0, LockedVerdict.RUN),
        (2, 2, LockedVerdict.RUN),  # 2 crashes of 5 allowed, 2 attempts of 3
        (3, 1, LockedVerdict.EXHAUSTED),  # died during its last attempt
        (5, 5, LockedVerdict.POISON),  # poison wins: the message says why
        (1, 5, LockedVerdict.POISON),
    ],
)
def test_verdict_table(attempts, crashes, expected):
    row = replace(ROW, attempts=attempts, crashes=crashes, last_error="worker w died")
    verdict = verdict_for_locked(row, max_attempts=3, max_crashes=5)
    assert verdict.kind is expected
    if expected is not LockedVerdict.RUN:
        assert "worker w died" in verdict.last_error
        assert "tomqueue retry 7" in verdict.last_error or "attempts used" in verdict.last_error
