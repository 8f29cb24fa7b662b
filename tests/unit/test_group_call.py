"""GroupCall: batched calls from many threads, without timers, failures shared."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from tomqueue.worker.group_call import GroupCall


def test_a_lone_call_is_a_batch_of_one():
    batches: list[list[int]] = []

    def run(requests: Sequence[int]) -> list[int]:
        batches.append(list(requests))
        return [r * 10 for r in requests]

    call = GroupCall(run)
    assert call(3) == 30
    assert call(4) == 40
    assert batches == [[3], [4]]


def test_callers_that_arrive_while_a_batch_runs_share_the_next_one():
    release = threading.Event()
    started = threading.Event()
    batches: list[list[int]] = []

    def run(requests: Sequence[int]) -> list[int]:
        batches.append(list(requests))
        if len(batches) == 1:
            started.set()
            release.wait(5)
        return [r + 1 for r in requests]

    call = GroupCall(run)
    results: dict[int, int] = {}

    def caller(n: int) -> None:
        results[n] = call(n)

    first = threading.Thread(target=caller, args=(0,))
    first.start()
    started.wait(5)
    others = [threading.Thread(target=caller, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    # wait until all five are queued behind the running batch
    deadline = threading.Event()
    for _ in range(500):
        if len(call._waiting) == 5:
            break
        deadline.wait(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == {n: n + 1 for n in range(6)}
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5] and len(batches) == 2
    assert (call.batches, call.requests) == (2, 6)


@pytest.mark.parametrize("max_batch, expected_sizes", [(2, [1, 2, 2, 1]), (10, [1, 5])])
def test_batches_are_bounded(max_batch, expected_sizes):
    gate = threading.Event()
    sizes: list[int] = []

    def run(requests: Sequence[int]) -> list[int]:
        sizes.append(len(requests))
        if len(sizes) == 1:
            gate.wait(5)
        return list(requests)

    call = GroupCall(run, max_batch=max_batch)
    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    for _ in range(500):
        if call._leader_active:
            break
        threading.Event().wait(0.01)
    threads += [threading.Thread(target=call, args=(n,)) for n in range(1, 6)]
    for thread in threads[1:]:
        thread.start()
    for _ in range(500):
        if len(call._waiting) == 5:
            break
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert sizes == expected_sizes


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs():
    calls = 0

    def run(requests: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("server went away")
        return list(requests)

    call = GroupCall(run)
    with pytest.raises(ConnectionError):
        call(1)
    assert call(2) == 2


def test_a_batch_that_returns_the_wrong_number_of_results_is_an_error():
    call = GroupCall(lambda requests: [])
    with pytest.raises(RuntimeError, match="1 requests gave 0 results"):
        call(1)


def test_many_threads_many_calls_every_result_reaches_its_caller():
    call = GroupCall(lambda requests: [r * 2 for r in requests], max_batch=8)
    results: list[list[tuple[int, int]]] = [[] for _ in range(8)]

    def worker(slot: int) -> None:
        for n in range(200):
            value = slot * 1000 + n
            results[slot].append((value, call(value)))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(out == value * 2 for slot in results for value, out in slot)
    assert sum(len(slot) for slot in results) == 1600
    assert call.requests == 1600 and call.batches <= 1600
