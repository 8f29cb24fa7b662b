"""Integer priorities onto the four levels: Delayed::Job's order by default, a map if given."""

import logging
import threading

import pytest

import tomqueue
from tomqueue import priority as priority_module
from tomqueue.priority import PriorityLevel, level_for

HIGH, NORMAL, LOW, BULK = (
    PriorityLevel.HIGH,
    PriorityLevel.NORMAL,
    PriorityLevel.LOW,
    PriorityLevel.BULK,
)


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each test starts as a new process would: no unmapped priority reported yet."""
    monkeypatch.setattr(priority_module, "_unmapped", priority_module._WarnOnce())


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        (-(2**31), HIGH),
        (-100, HIGH),
        (-1, HIGH),
        (0, NORMAL),  # Delayed::Job's default priority
        (1, LOW),
        (5, LOW),
        (9, LOW),
        (10, BULK),
        (20, BULK),
        (2**31 - 1, BULK),
    ],
)
def test_without_a_map_lower_numbers_run_first(priority, expected, fresh_warnings, caplog):
    with caplog.at_level(logging.WARNING, logger="tomqueue.priority"):
        assert level_for(priority, {}) is expected
    assert caplog.records == []  # no map, nothing to warn about


MAP = {1: tomqueue.HIGH_PRIORITY, 9: tomqueue.BULK_PRIORITY, 20: tomqueue.LOW_PRIORITY}


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        (1, HIGH),
        (9, BULK),
        (20, LOW),  # the map wins over the default (which would say BULK)
        (-1, NORMAL),  # unmapped: NORMAL, not the default's HIGH
        (0, NORMAL),
        (5, NORMAL),  # not the default's LOW
        (10, NORMAL),  # not the default's BULK
    ],
)
def test_a_map_replaces_the_default_entirely(priority, expected, fresh_warnings):
    assert level_for(priority, MAP) is expected


def test_an_unmapped_priority_is_reported_once_per_priority(fresh_warnings, caplog):
    with caplog.at_level(logging.WARNING, logger="tomqueue.priority"):
        for _ in range(3):
            level_for(7, MAP)
            level_for(8, MAP)
            level_for(1, MAP)  # mapped: never reported
    assert [r.getMessage() for r in caplog.records] == [
        "priority 7 is not in priority_map; it runs at NORMAL",
        "priority 8 is not in priority_map; it runs at NORMAL",
    ]


def test_many_threads_meeting_an_unmapped_priority_report_it_once(fresh_warnings, caplog):
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    levels: list[PriorityLevel] = []

    def look() -> None:
        barrier.wait()
        for _ in range(200):
            levels.append(level_for(7, MAP))

    with caplog.at_level(logging.WARNING, logger="tomqueue.priority"):
        threads = [threading.Thread(target=look) for _ in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert set(levels) == {NORMAL} and len(levels) == threads_count * 200
    assert len(caplog.records) == 1
