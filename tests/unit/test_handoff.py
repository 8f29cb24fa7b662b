"""The consumer's hand-off rules, from tables (no sockets)."""

import ast
import sys
from pathlib import Path

import pytest

from tomqueue.worker import handoff
from tomqueue.worker.handoff import (
    HOARD_LIMIT,
    EarlyAck,
    Subscription,
    early_ack,
    low_water_for,
    prefetch_for,
    rank_to_take,
    subscription_change,
    wake_for_settles,
)

HIGH, NORMAL, LOW, BULK = range(4)


@pytest.mark.parametrize(
    ("concurrency", "prefetch", "low_water"),
    [
        (1, 3, 2),
        (2, 6, 3),
        (8, 24, 9),
        (64, 192, 65),
    ],
)
def test_prefetch_and_low_water_follow_the_slots(concurrency, prefetch, low_water):
    assert prefetch_for(concurrency) == prefetch
    assert low_water_for(concurrency) == low_water


@pytest.mark.parametrize(
    ("in_hand", "unsettled", "prefetch", "expected"),
    [
        # nothing in hand: nothing to take
        ([0, 0, 0, 0], [0, 0, 0, 0], 3, None),
        ([0, 0, 0, 0], [3, 3, 3, 3], 3, None),
        # the highest level in hand is taken
        ([1, 0, 0, 0], [0, 0, 0, 0], 3, HIGH),
        ([2, 0, 5, 0], [0, 0, 0, 0], 3, HIGH),
        ([0, 1, 1, 1], [0, 0, 0, 0], 3, NORMAL),
        ([0, 0, 0, 1], [0, 0, 0, 0], 3, BULK),
        # a higher level with acks unsent, but room left in its window: take the lower one
        ([0, 0, 1, 0], [2, 0, 0, 0], 3, LOW),
        ([0, 0, 0, 1], [2, 2, 2, 0], 3, BULK),
        # a higher level's whole window unsettled: RabbitMQ may hold its messages back
        ([0, 0, 1, 0], [3, 0, 0, 0], 3, None),
        ([0, 0, 1, 0], [0, 4, 0, 0], 3, None),
        ([0, 0, 0, 1], [0, 0, 3, 0], 3, None),
        # ... but a level's own full window does not stop taking what is in hand
        ([1, 0, 0, 0], [3, 0, 0, 0], 3, HIGH),
        ([0, 0, 1, 0], [0, 0, 3, 0], 3, LOW),
        # ... nor does a lower level's full window
        ([0, 1, 0, 0], [0, 0, 3, 3], 3, NORMAL),
        # the window is the prefetch given, not a fixed three
        ([0, 1, 0, 0], [5, 0, 0, 0], 6, NORMAL),
        ([0, 1, 0, 0], [6, 0, 0, 0], 6, None),
        # any number of levels
        ([0, 1], [0, 0], 3, 1),
        ([], [], 3, None),
    ],
)
def test_a_free_slot_takes_the_highest_level_not_held_back(in_hand, unsettled, prefetch, expected):
    assert rank_to_take(in_hand, unsettled, prefetch) == expected


@pytest.mark.parametrize(
    ("left_in_hand", "settles_queued", "low_water", "expected"),
    [
        (0, True, 2, True),
        (1, True, 2, True),
        (2, True, 2, False),  # at the low-water mark: enough left
        (7, True, 2, False),
        (0, False, 2, False),  # nothing to send: no wake-up, however low the hand
        (1, False, 2, False),
        (8, True, 9, True),
    ],
)
def test_the_connection_thread_is_woken_below_low_water_with_settles_queued(
    left_in_hand, settles_queued, low_water, expected
):
    assert wake_for_settles(left_in_hand, settles_queued, low_water) is expected


@pytest.mark.parametrize(
    ("slots_waiting", "subscribed", "idle_for", "expected"),
    [
        # a waiting slot: subscribe, or stay subscribed, however long the idle spell was
        (True, False, 0.0, Subscription.SUBSCRIBE),
        (True, False, 60.0, Subscription.SUBSCRIBE),
        (True, True, 0.0, Subscription.KEEP),
        (True, True, 60.0, Subscription.KEEP),
        # every slot busy: keep the messages in hand up to HOARD_LIMIT, then give them back
        (False, True, 0.0, Subscription.KEEP),
        (False, True, HOARD_LIMIT / 2, Subscription.KEEP),
        (False, True, HOARD_LIMIT, Subscription.KEEP),
        (False, True, HOARD_LIMIT + 0.001, Subscription.UNSUBSCRIBE),
        (False, True, 3600.0, Subscription.UNSUBSCRIBE),
        # not subscribed and no slot waiting: nothing to give back, nothing to ask for
        (False, False, 0.0, Subscription.KEEP),
        (False, False, 3600.0, Subscription.KEEP),
    ],
)
def test_messages_are_not_hoarded_while_every_slot_is_busy(
    slots_waiting, subscribed, idle_for, expected
):
    assert subscription_change(slots_waiting, subscribed, idle_for) is expected


@pytest.mark.parametrize(
    ("settled", "current_channel", "locked_at", "now", "limit", "expected"),
    [
        # settled already, or its channel is gone: stop watching, never ack
        (True, True, 0.0, 100.0, 10.0, EarlyAck.FORGET),
        (False, False, 0.0, 100.0, 10.0, EarlyAck.FORGET),
        (True, False, None, 100.0, 10.0, EarlyAck.FORGET),
        # its row not locked yet: no lease protects it, so never acked early
        (False, True, None, 100.0, 10.0, EarlyAck.KEEP_WATCHING),
        (False, True, None, 1e9, 10.0, EarlyAck.KEEP_WATCHING),
        # locked for less than the limit: keep watching
        (False, True, 95.0, 100.0, 10.0, EarlyAck.KEEP_WATCHING),
        (False, True, 90.001, 100.0, 10.0, EarlyAck.KEEP_WATCHING),
        # locked for the limit or longer: ack now
        (False, True, 90.0, 100.0, 10.0, EarlyAck.ACK),
        (False, True, 0.0, 100.0, 10.0, EarlyAck.ACK),
    ],
)
def test_long_runners_are_acked_early_once_their_row_is_locked_long_enough(
    settled, current_channel, locked_at, now, limit, expected
):
    assert early_ack(settled, current_channel, locked_at, now, limit) is expected


def test_the_rules_import_only_the_standard_library():
    """No pika (nor anything that imports it): the rules stay out of the adapter."""
    tree = ast.parse(Path(handoff.__file__).read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
