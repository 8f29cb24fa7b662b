"""Named queues' pure parts: names, a worker's selection, routing, the wire field, the fair
hand, settings and class options; tested from tables."""

from datetime import UTC, datetime

import pytest

import tomqueue
from tomqueue.broker.topology import Topology
from tomqueue.errors import ConfigurationError, MalformedNotificationError
from tomqueue.priority import LEVELS_IN_ORDER, PriorityLevel
from tomqueue.queues import QueueSelection, shown_queue, stored_queue
from tomqueue.settings import Settings, settings_from_env
from tomqueue.wire import Notification, decode_notification, encode_notification
from tomqueue.worker.handoff import FairHand

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "stored"),
    [(None, None), ("default", None), ("billing", "billing"), ("a.b:c-d_e9", "a.b:c-d_e9")],
)
def test_stored_queue_keeps_default_as_null(given, stored):
    assert stored_queue(given) == stored
    assert shown_queue(stored) == (given or "default")


@pytest.mark.parametrize("bad", ["", " ", "a b", "a*", "a#", "-a", ".a", "é", "x" * 101, "a\n"])
def test_bad_names_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="queue must be 1 to 100"):
        stored_queue(bad)


@pytest.mark.parametrize(
    ("text", "served", "not_served"),
    [
        (None, [None, "billing", "x"], []),
        ("", [None, "billing"], []),
        ("billing", ["billing"], [None, "reports"]),
        ("default", [None], ["billing"]),
        (" billing , default ", [None, "billing"], ["reports"]),
        ("billing,billing", ["billing"], [None]),
    ],
)
def test_a_selection_serves_what_it_names(text, served, not_served):
    selection = QueueSelection.parse(text)
    assert all(selection.serves(q) for q in served)
    assert not any(selection.serves(q) for q in not_served)


def test_a_selection_subscribes_default_first_then_by_name():
    assert QueueSelection.parse("zeta,default,alpha").fixed_queues() == [None, "alpha", "zeta"]
    assert QueueSelection.parse("zeta,default,alpha").describe() == "default,alpha,zeta"
    assert QueueSelection.every().fixed_queues() == [None]
    assert QueueSelection.every().describe() == "every queue"


@pytest.mark.parametrize("text", [",", " , ", "billing,no way", "a#"])
def test_a_bad_selection_is_refused(text):
    with pytest.raises(ValueError):
        QueueSelection.parse(text)


def test_settings_take_queues_from_text_lists_and_the_environment():
    assert Settings(queues="a,b").queues == QueueSelection.of(["a", "b"])  # type: ignore[arg-type]
    assert Settings(queues=["default"]).queues.names == frozenset({None})  # type: ignore[arg-type]
    assert settings_from_env({"TOMQUEUE_QUEUES": "billing"}).queues.serves("billing")
    assert not settings_from_env({"TOMQUEUE_QUEUES": "billing"}).queues.serves(None)
    assert settings_from_env({}).queues.serves_all
    with pytest.raises(ConfigurationError, match="queues: a --queues name must be"):
        Settings(queues="ok,not ok")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="queues must be queue names"):
        Settings(queues=3)  # type: ignore[arg-type]


def test_every_queue_and_level_has_its_own_rabbitmq_queue_and_exact_routing_key():
    topology = Topology("app")
    names, keys = set(), set()
    for queue in [None, "billing", "normal", "a.b", "queue"]:
        for level in LEVELS_IN_ORDER:
            names.add(topology.queue_for(level, queue))
            keys.add(topology.routing_key(level, queue))
    assert len(names) == len(keys) == 5 * 4
    assert topology.queue_for(PriorityLevel.HIGH) == "app.balance.high"  # as it always was
    assert topology.routing_key(PriorityLevel.HIGH) == "high"
    assert topology.queue_for(PriorityLevel.BULK, "billing") == "app.queue.billing.bulk"
    assert topology.routing_key(PriorityLevel.BULK, "billing") == "queue.billing.bulk"
    assert all("*" not in key and "#" not in key for key in keys)


def test_the_queue_rides_on_the_notification_and_a_default_message_is_unchanged():
    named = Notification(7, "ab12", PriorityLevel.LOW, AT, "billing")
    assert decode_notification(encode_notification(named)) == named
    plain = Notification(7, "ab12", PriorityLevel.LOW, AT)
    assert b"queue" not in encode_notification(plain)
    assert decode_notification(encode_notification(plain)).queue is None


@pytest.mark.parametrize("queue", ['"a b"', '"x*"', "3", "[]", '""'])
def test_a_message_with_a_bad_queue_is_malformed(queue):
    body = (
        '{"v":1,"job_id":1,"digest":"ab","level":"normal",'
        f'"run_at":"2026-12-05T12:00:00+00:00","queue":{queue}}}'
    ).encode()
    with pytest.raises(MalformedNotificationError, match="queue"):
        decode_notification(body)


def take_all(hand: FairHand[tuple[str, int]]) -> list[tuple[str, int]]:
    return [hand.popleft() for _ in range(len(hand))]


def test_the_fair_hand_takes_from_each_queue_in_turn():
    hand: FairHand[tuple[str, int]] = FairHand(lambda item: item[0])
    for item in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("a", 4), ("c", 1), ("b", 2)]:
        hand.append(item)
    assert len(hand) == 7 and sorted(hand) == sorted(hand)
    assert take_all(hand) == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("a", 2),
        ("b", 2),
        ("a", 3),
        ("a", 4),
    ]
    assert len(hand) == 0 and not hand
    with pytest.raises(IndexError):
        hand.popleft()


def test_the_fair_hand_with_one_queue_is_first_in_first_out_and_puts_back_in_front():
    hand: FairHand[tuple[str, int]] = FairHand(lambda item: item[0])
    for n in range(5):
        hand.append(("only", n))
    first = hand.popleft()
    hand.appendleft(first)
    assert take_all(hand) == [("only", n) for n in range(5)]
    hand.append(("x", 1))
    hand.append(("y", 1))
    taken = hand.popleft()
    hand.appendleft(taken)  # given back: its queue's turn comes first again
    assert hand.popleft() == ("x", 1)
    hand.clear()
    assert len(hand) == 0 and list(hand) == []


def test_a_class_queue_name_must_be_a_queue_name():
    with pytest.raises(TypeError, match="queue_name must be None or a queue name"):

        class Spaced(tomqueue.Job):
            queue_name = "has space"

            def perform(self) -> None: ...

    class Fine(tomqueue.Job):
        queue_name = "billing"

        def perform(self) -> None: ...

    assert Fine.queue_name == "billing"
