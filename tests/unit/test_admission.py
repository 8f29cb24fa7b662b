from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tomqueue.admission import Admission, admit
from tomqueue.snapshot import JobSnapshot

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ROW = JobSnapshot(
    id=1,
    priority=0,
    attempts=0,
    handler="{}",
    last_error=None,
    run_at=NOW - timedelta(seconds=1),
    locked_at=None,
    locked_by=None,
    failed_at=None,
    queue=None,
    created_at=NOW,
    updated_at=NOW,
)
LOCKED = replace(ROW, locked_at=NOW, locked_by="w1", lock_key=9)
FUTURE = replace(ROW, run_at=NOW + timedelta(seconds=30))


def digest(row):
    return row.digest


@pytest.mark.parametrize(
    ("row", "matching_digest", "alive", "expected"),
    [
        (None, True, False, Admission.DROP_MISSING),
        (replace(ROW, failed_at=NOW), True, False, Admission.DROP_FAILED),
        (ROW, False, False, Admission.DROP_STALE),
        (LOCKED, True, True, Admission.DROP_LOCKED),
        (FUTURE, True, False, Admission.DEFER),
        (LOCKED, True, False, Admission.ORPHANED),  # the sweep takes over after the grace
        (replace(FUTURE, locked_by="w1", lock_key=3), True, False, Admission.ORPHANED),
        (ROW, True, False, Admission.RUN),
        (replace(ROW, run_at=NOW), True, False, Admission.RUN),  # due exactly now
        (replace(LOCKED, failed_at=NOW), True, True, Admission.DROP_FAILED),
        (replace(FUTURE, locked_by="w1", lock_key=3), True, True, Admission.DROP_LOCKED),
    ],
)
def test_admission_table(row, matching_digest, alive, expected):
    note_digest = row.digest if (row is not None and matching_digest) else "stale"
    assert admit(row, note_digest, NOW, alive, own_lock="me run:1") is expected


@pytest.mark.parametrize("alive", [True, False])
def test_a_lock_this_attempt_already_holds_is_recognised(alive):
    mine = replace(LOCKED, locked_by="me run:1")
    assert admit(mine, mine.digest, NOW, alive, own_lock="me run:1") is Admission.RUN_OWN_LOCK
    # the same worker's earlier attempt is someone else
    assert admit(mine, mine.digest, NOW, True, own_lock="me run:2") is Admission.DROP_LOCKED


def test_only_run_decisions_run():
    assert {a for a in Admission if a.runs} == {Admission.RUN, Admission.RUN_OWN_LOCK}
