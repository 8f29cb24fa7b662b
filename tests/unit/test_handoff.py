"""The consumer's hand-off rules, from tables (no sockets)."""

import ast
import random
import sys
from pathlib import Path

import pytest

from tomqueue.worker import handoff
from tomqueue.worker.handoff import (
    HOARD_LIMIT,
    AckFrame,
    EarlyAck,
    NackFrame,
    Settle,
    Subscription,
    early_ack,
    low_water_for,
    prefetch_for,
    rank_to_take,
    settle_frames,
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


GEN = 7  # the consumer's current channel


def ack(tag, generation=GEN):
    return Settle(tag, ack=True, generation=generation)


def nack(tag, requeue=True, generation=GEN):
    return Settle(tag, ack=False, requeue=requeue, generation=generation)


def multiple(tag):
    return AckFrame(tag, multiple=True)


@pytest.mark.parametrize(
    ("outstanding", "settles", "frames"),
    [
        # a single ack: a plain frame, as before
        ({1}, [ack(1)], [AckFrame(1)]),
        ({5, 6, 7}, [ack(5)], [AckFrame(5)]),
        # nothing queued: nothing sent
        ({1, 2}, [], []),
        # contiguous acks from the lowest outstanding tag: one multiple ack
        ({1, 2, 3}, [ack(1), ack(2), ack(3)], [multiple(3)]),
        ({4, 5, 6, 7, 8}, [ack(4), ack(5), ack(6)], [multiple(6)]),
        # tags settled in earlier batches are not outstanding: no gap where they were
        ({10, 12, 15}, [ack(10), ack(12), ack(15)], [multiple(15)]),
        # acks out of order: the same run
        ({1, 2, 3, 4}, [ack(3), ack(1), ack(2)], [multiple(3)]),
        ({1, 2, 3}, [ack(3), ack(2), ack(1)], [multiple(3)]),
        # a gap held by a running slot (or in hand): acks up to it coalesced, the rest singly
        (
            {1, 2, 3, 4, 5, 6},
            [ack(1), ack(2), ack(4), ack(5)],
            [multiple(2), AckFrame(4), AckFrame(5)],
        ),
        ({1, 2, 3, 4}, [ack(1), ack(3)], [AckFrame(1), AckFrame(3)]),
        # ... and with the lowest tag held, nothing is coalesced
        ({1, 2, 3, 4}, [ack(2), ack(3), ack(4)], [AckFrame(2), AckFrame(3), AckFrame(4)]),
        # a nack in the middle: acks before it, the nack, acks after it, never reordered
        (
            {1, 2, 3, 4, 5, 6},
            [ack(1), ack(2), nack(3), ack(4), ack(5)],
            [multiple(2), NackFrame(3, requeue=True), multiple(5)],
        ),
        # ... a nack queued after an ack of a higher tag: the ack goes singly first, so that
        # no multiple ack reaches the nacked tag before its nack
        (
            {1, 2, 3},
            [ack(1), ack(3), nack(2, requeue=False)],
            [AckFrame(1), AckFrame(3), NackFrame(2, requeue=False)],
        ),
        (
            {1, 2, 3},
            [ack(2), nack(1), ack(3)],
            [AckFrame(2), NackFrame(1, requeue=True), AckFrame(3)],
        ),
        # ... once sent, a nack leaves no gap: later acks run over its tag
        ({1, 2, 3}, [nack(1), ack(2), ack(3)], [NackFrame(1, requeue=True), multiple(3)]),
        # nacks alone: singly, in order
        ({1, 2, 3}, [nack(2), nack(1)], [NackFrame(2, requeue=True), NackFrame(1, requeue=True)]),
        # settles from an older generation (a channel gone with its tags): dropped
        ({1, 2}, [ack(1, generation=GEN - 1), ack(2, generation=GEN - 1)], []),
        ({1, 2}, [nack(1, generation=GEN - 1)], []),
        ({1, 2, 3}, [ack(1, generation=GEN - 1), ack(1), ack(2)], [multiple(2)]),
        # ... an old tag equal to a new one outstanding is not a settle of the new one
        ({1, 2}, [ack(1), ack(2, generation=GEN - 1)], [AckFrame(1)]),
        # an ack of a tag not known outstanding goes singly, and coalesces nothing
        ({1, 2}, [ack(9), ack(1)], [AckFrame(9), AckFrame(1)]),
    ],
)
def test_acks_are_coalesced_into_a_multiple_ack_only_where_exactly_equivalent(
    outstanding, settles, frames
):
    assert settle_frames(outstanding, settles, GEN) == frames


def test_settle_frames_leaves_the_outstanding_tags_alone():
    outstanding = {1, 2, 3}
    settle_frames(outstanding, [ack(1), ack(2)], GEN)
    assert outstanding == {1, 2, 3}


def _broker_after(outstanding, frames):
    """RabbitMQ's view: which tags each frame acks or nacks (a multiple ack takes every
    unsettled tag up to its own); a frame for a tag already settled is a channel error."""
    unsettled, acked, nacked = set(outstanding), set(), []
    for frame in frames:
        if isinstance(frame, AckFrame) and frame.multiple:
            taken = {tag for tag in unsettled if tag <= frame.tag}
        else:
            taken = {frame.tag}
        assert taken <= unsettled, f"{frame} settles a tag twice"
        unsettled -= taken
        if isinstance(frame, AckFrame):
            acked |= taken
        else:
            nacked.append(frame.tag)
    return acked, nacked


@pytest.mark.parametrize("seed", range(200))
def test_the_frames_settle_exactly_what_the_slots_asked(seed):
    rng = random.Random(seed)
    outstanding = set(rng.sample(range(1, 40), rng.randint(1, 20)))
    chosen = rng.sample(sorted(outstanding), rng.randint(0, len(outstanding)))
    settles = [ack(tag) if rng.random() < 0.8 else nack(tag) for tag in chosen]
    frames = settle_frames(outstanding, settles, GEN)
    acked, nacked = _broker_after(outstanding, frames)
    assert acked == {s.tag for s in settles if s.ack}
    assert nacked == [s.tag for s in settles if not s.ack]
    # a nack goes after the acks queued before it, and before those queued after it
    for index, settle in enumerate(settles):
        if not settle.ack:
            before = frames[: frames.index(NackFrame(settle.tag, requeue=True))]
            acked_before = _broker_after(outstanding, before)[0]
            assert acked_before == {s.tag for s in settles[:index] if s.ack}
    assert len([f for f in frames if isinstance(f, AckFrame)]) <= len(acked)


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
