"""tomqueue.status without servers: the state rule from a table, JobStatus and to_dict, and
the fake store's history following the same rule."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tomqueue.fakes import InMemoryJobStore
from tomqueue.job_status import HistoryFacts, JobRowFacts, JobStatus, derive_state
from tomqueue.progress import StatusReport
from tomqueue.snapshot import row_digest
from tomqueue.store.values import Ended, NewJob

PENDING = JobRowFacts(failed=False, locked=False)
LOCKED = JobRowFacts(failed=False, locked=True)
FAILED = JobRowFacts(failed=True, locked=False)
SUCCEEDED = HistoryFacts("succeeded", expired=False)
SUCCEEDED_EXPIRED = HistoryFacts("succeeded", expired=True)
ENDED_FAILED = HistoryFacts("failed", expired=False)
RUNNING = HistoryFacts(None, expired=False)


@pytest.mark.parametrize(
    ("row", "history", "state"),
    [
        (None, None, None),  # unknown id
        (PENDING, None, "queued"),  # due, future, or waiting for a retry
        (PENDING, ENDED_FAILED, "queued"),  # failed for good, then retried by a person
        (PENDING, RUNNING, "queued"),  # reported progress, failed, waits for its retry
        (LOCKED, None, "working"),
        (LOCKED, RUNNING, "working"),
        (LOCKED, SUCCEEDED, "working"),  # the row is the truth
        (FAILED, None, "failed"),
        (FAILED, ENDED_FAILED, "failed"),
        (JobRowFacts(failed=True, locked=True), None, "failed"),
        (None, SUCCEEDED, "completed"),
        (None, SUCCEEDED_EXPIRED, None),  # expired, not yet purged
        (None, ENDED_FAILED, None),  # failed, then deleted by a person
        (None, RUNNING, None),  # deleted while it ran
    ],
)
def test_the_state_is_derived_from_the_two_rows(row, history, state):
    assert derive_state(row, history) == state


@pytest.mark.parametrize(
    ("value", "total", "progress"),
    [(None, None, None), (5, None, None), (5, 10, 0.5), (None, 10, 0.0), (3, 0, None)],
)
def test_progress_is_value_over_total(value, total, progress):
    assert JobStatus(1, "working", value, total).progress == progress


def test_to_dict_is_json_ready_with_its_own_keys_first():
    status = JobStatus(7, "completed", 50, 50, {"step": "C", "rows": [1, 2]})
    as_dict = status.to_dict()
    assert list(as_dict) == ["id", "state", "progress", "value", "total", "step", "rows"]
    assert as_dict == {
        "id": 7,
        "state": "completed",
        "progress": 1.0,
        "value": 50,
        "total": 50,
        "step": "C",
        "rows": [1, 2],
    }
    assert json.loads(json.dumps(as_dict)) == as_dict
    # fields never override the status's own keys, even if a row was edited by hand
    assert JobStatus(7, "queued", fields={"state": "x", "id": 0}).to_dict()["state"] == "queued"


@pytest.mark.parametrize("state", ["queued", "working", "completed", "failed"])
def test_exactly_one_predicate_holds(state):
    status = JobStatus(1, state)
    flags = {name: getattr(status, name) for name in ("queued", "working", "completed", "failed")}
    assert flags == {name: name == state for name in flags}


def test_tomqueue_status_is_lazy_and_importing_tomqueue_loads_no_driver():
    code = (
        "import sys, tomqueue\n"
        "f = tomqueue.status\n"
        "assert callable(f) and tomqueue.JobStatus.__name__ == 'JobStatus'\n"
        "print(','.join(m for m in ('sqlalchemy', 'psycopg', 'pika') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def locked_row(store: InMemoryJobStore, holder: str = "w run:1") -> int:
    [row] = store.insert_committed([NewJob('{"v":1}', 0, None, None)])
    digest = row_digest(row.id, row.handler, row.run_at, row.attempts, row.priority)
    store.hold_lease(1)
    assert store.lock_for_run(row.id, digest, holder, 1).admission.runs
    return row.id


def test_the_fake_store_follows_a_job_from_working_to_completed_then_expired():
    clock = FakeClock()
    store = InMemoryJobStore(now=clock)
    job_id = locked_row(store)
    assert store.status(job_id) == JobStatus(job_id, "working")
    assert store.write_status(job_id, "w run:1", "C", StatusReport(3, 10, {"step": "B"}))
    assert store.write_status(job_id, "other run:9", "C", StatusReport(9, 9, None)) is False
    working = store.status(job_id)
    assert working is not None and working.progress == 0.3 and working.fields == {"step": "B"}
    final = Ended("C", 60.0, StatusReport(10, None, None))
    assert store.delete_succeeded(job_id, "w run:1", final)
    done = store.status(job_id)
    assert done == JobStatus(job_id, "completed", 10, 10, {"step": "B"})
    clock.now += timedelta(seconds=61)
    assert store.status(job_id) is None
    assert store.status(job_id + 100) is None


def test_the_fake_store_keeps_a_failed_jobs_history():
    store = InMemoryJobStore()
    job_id = locked_row(store)
    store.record_failure(job_id, "w run:1", 1, "boom", datetime.now(UTC) + timedelta(hours=1))
    queued = store.status(job_id)
    assert queued is not None and queued.queued  # waiting for its retry
    assert job_id not in store.history  # nothing written for a retry
    store.edit(job_id, run_at=datetime.now(UTC) - timedelta(seconds=1))
    row = store.get(job_id)
    assert row is not None
    store.lock_for_run(job_id, row.digest, "w run:2", 1)
    store.record_failure(job_id, "w run:2", 2, "boom", None, Ended("C", 60.0))
    failed = store.status(job_id)
    assert failed is not None and failed.failed
    assert store.history[job_id].outcome == "failed"
