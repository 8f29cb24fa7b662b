"""Unique jobs without servers: the id resolution from tables, the key's checks, and the
enqueue stack over the fake store (held to PostgreSQL's unique index by tests/contract/)."""

from __future__ import annotations

import pytest

import tomqueue
from tests.unit.test_layers_enqueue import Greet, Runtime, enqueue
from tomqueue.enqueue.unique import UniqueEnqueueError, resolve_ids
from tomqueue.job import stored_unique_key
from tomqueue.snapshot import JobSnapshot
from tomqueue.store.values import NewJob


class Refresh(tomqueue.Job):
    """Unique per account: one refresh waiting per account is enough."""

    def __init__(self, account: int, key: object = None) -> None:
        self.account = account
        self.key = key

    def unique_key(self) -> str | None:
        return self.key if self.key is not None else f"account:{self.account}"  # type: ignore[return-value]

    def perform(self) -> None:
        pass


class OtherRefresh(Refresh):
    pass


def new(key: str | None) -> NewJob:
    return NewJob(handler="{}", priority=0, run_at=None, queue=None, unique_key=key)


def row(job_id: int, key: str | None) -> JobSnapshot:
    from datetime import UTC, datetime

    at = datetime(2026, 12, 5, tzinfo=UTC)
    return JobSnapshot(
        job_id, 0, 0, "{}", None, at, None, None, None, None, at, at, at, unique_key=key
    )


@pytest.mark.parametrize(
    ("keys", "written", "twins", "expected"),
    [
        ([None, None], [(1, None), (2, None)], {}, [1, 2]),
        (["a", None, "a"], [(5, "a"), (6, None)], {}, [5, 6, 5]),  # a key twice in a batch
        (["a", "b", None], [(7, "b"), (8, None)], {"a": 3}, [3, 7, 8]),  # a's twin waits
    ],
)
def test_each_job_given_gets_its_rows_id_or_its_waiting_twins(keys, written, twins, expected):
    asked: list[list[str]] = []

    def waiting(missing):
        asked.append(list(missing))
        return {k: v for k, v in twins.items() if k in missing}

    ids = resolve_ids(
        [new(k) for k in keys], [row(i, k) for i, k in written], waiting, _never_again
    )
    assert ids == expected
    assert asked == ([sorted(twins)] if twins else [])


def _never_again(jobs):
    raise AssertionError("nothing had to be written again")


def test_a_twin_that_started_meanwhile_means_writing_the_job_again():
    written = [row(1, None)]
    again_asked: list[list[str | None]] = []

    def write_again(jobs):
        again_asked.append([job.unique_key for job in jobs])
        return [row(9, jobs[0].unique_key)]

    ids = resolve_ids([new(None), new("k"), new("k")], written, lambda keys: {}, write_again)
    assert ids == [1, 9, 9]
    assert again_asked == [["k"]]  # the first job with the key only
    assert [r.id for r in written] == [1, 9]  # the caller announces the new row too


def test_a_job_that_can_never_be_written_nor_found_is_an_error_not_a_loop():
    with pytest.raises(UniqueEnqueueError, match="could not be written or found"):
        resolve_ids([new("k")], [], lambda keys: {}, lambda jobs: [])


def test_the_stored_key_names_the_class_so_two_classes_never_share_one():
    assert stored_unique_key(Refresh(1)) == f"{Refresh.class_name()} account:1"
    assert stored_unique_key(OtherRefresh(1)) != stored_unique_key(Refresh(1))
    assert stored_unique_key(Greet("x")) is None


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        (42, TypeError, "must return a str or None"),
        ("", ValueError, "1 to 500 characters"),
        ("x" * 501, ValueError, "1 to 500 characters"),
        ("a\x00b", ValueError, "no NUL"),
    ],
)
def test_a_bad_key_is_refused_before_anything_is_written(key, error, match):
    runtime = Runtime()
    with pytest.raises(error, match=match):
        enqueue(runtime, [Greet("ok"), Refresh(1, key=key)])
    assert runtime.enqueue_store.jobs() == []


def test_a_waiting_twin_makes_enqueue_return_its_id_and_write_nothing():
    runtime = Runtime()
    [first] = enqueue(runtime, [Refresh(1)])
    announced = len(runtime.announcer.submitted)
    assert enqueue(runtime, [Refresh(1)]) == [first]
    assert enqueue(runtime, [Refresh(2), Refresh(1), Greet("g")])[1] == first
    assert [r.unique_key for r in runtime.enqueue_store.jobs()].count(
        stored_unique_key(Refresh(1))
    ) == 1
    # nothing new was announced for the twin that was not written
    assert first not in [n.job_id for n in runtime.announcer.submitted[announced:]]
    assert len(runtime.announcer.submitted) == announced + 2  # Refresh(2) and Greet only


def test_a_running_job_is_no_twin_but_a_job_waiting_for_its_retry_is():
    runtime = Runtime()
    store = runtime.enqueue_store
    [first] = enqueue(runtime, [Refresh(1)])
    job = store.get(first)
    store.lock_for_run(first, job.digest, "w run:1", 1)  # running now
    [second] = enqueue(runtime, [Refresh(1)])
    assert second != first
    # the first fails and waits for its retry: the second is its twin, so it goes on
    # without the key, and both run (no job is lost, the index is never violated)
    store.record_failure(first, "w run:1", 1, "boom", job.run_at)
    assert store.get(first).unique_key is None
    assert store.get(second).unique_key == stored_unique_key(Refresh(1))
    assert enqueue(runtime, [Refresh(1)]) == [second]


def test_a_job_failed_for_good_is_no_twin():
    runtime = Runtime()
    store = runtime.enqueue_store
    [first] = enqueue(runtime, [Refresh(3)])
    store.lock_for_run(first, store.get(first).digest, "w run:1", 1)
    store.fail_held(first, "w run:1", "unknown class")
    [second] = enqueue(runtime, [Refresh(3)])
    assert second != first
