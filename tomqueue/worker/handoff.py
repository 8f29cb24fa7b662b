"""Hand-off rules: which message a free slot takes, when the consumer subscribes or wakes,
and which ack and nack frames carry the slots' settles.

Pure decisions on plain values (counts per priority rank, highest first; monotonic seconds;
delivery tags), tested from tables; ``tomqueue.broker.priority_consumer`` carries them out
with pika. This module imports nothing but the standard library, so that the rules stay out
of the adapter.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence, Set
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")

HOARD_LIMIT = 0.1  # seconds messages may wait in hand while every slot is busy
PREFETCH_PER_SLOT = 3  # messages per level and slot RabbitMQ may push ahead
EARLY_ACK_CHECK_INTERVAL = 0.5  # seconds between looks for long runners to ack


def prefetch_for(concurrency: int) -> int:
    """RabbitMQ's prefetch per level queue: while every slot runs a job of some level, the
    next messages of that level are already in hand."""
    return PREFETCH_PER_SLOT * concurrency


def low_water_for(concurrency: int) -> int:
    """Fewer of a level in hand than this, with settles queued, wakes the connection thread,
    so that RabbitMQ's credit comes back while slots still have messages to take."""
    return concurrency + 1


def rank_to_take(in_hand: Sequence[int], unsettled: Sequence[int], prefetch: int) -> int | None:
    """The rank a free slot takes its message from: the highest with any in hand.

    None if nothing is in hand, or if a higher rank with none in hand has its whole prefetch
    window unsettled: RabbitMQ may be holding its next messages back until the acks are
    sent, so a lower rank must not be taken before them. ``in_hand`` and ``unsettled`` are
    counts per rank, highest first.
    """
    for rank, waiting in enumerate(in_hand):
        if waiting:
            return rank
        if unsettled[rank] >= prefetch:
            return None
    return None


class FairHand(Generic[T]):
    """One priority rank's messages in hand, kept by named queue and taken in turn: each
    take comes from the next queue (after the one taken from last) that has any. So within
    a level, a backlog in one queue delays another queue's message by at most one take per
    other queue, whatever the backlog; with one queue it is a plain first-in, first-out.
    """

    def __init__(self, queue_of: Callable[[T], Hashable]) -> None:
        self._queue_of = queue_of
        self._by_queue: dict[Hashable, deque[T]] = {}  # in turn order, next first
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        for waiting in self._by_queue.values():
            yield from waiting

    def append(self, item: T) -> None:
        self._by_queue.setdefault(self._queue_of(item), deque()).append(item)
        self._size += 1

    def popleft(self) -> T:
        """The next queue's oldest; that queue then goes to the back of the turn."""
        if not self._by_queue:  # every queue kept here has something in hand
            raise IndexError("nothing in hand")
        queue = next(iter(self._by_queue))
        waiting = self._by_queue[queue]
        item = waiting.popleft()
        self._size -= 1
        del self._by_queue[queue]
        if waiting:
            self._by_queue[queue] = waiting
        return item

    def appendleft(self, item: T) -> None:
        """Put back what ``popleft`` gave: first again, and its queue's turn first."""
        queue = self._queue_of(item)
        waiting = self._by_queue.pop(queue, None) or deque()
        waiting.appendleft(item)
        self._by_queue = {queue: waiting, **self._by_queue}
        self._size += 1

    def clear(self) -> None:
        self._by_queue.clear()
        self._size = 0


def wake_for_settles(left_in_hand: int, settles_queued: bool, low_water: int) -> bool:
    """After a slot took a message: wake the connection thread to send the queued settles
    when fewer than ``low_water`` of that level are left in hand."""
    return settles_queued and left_in_hand < low_water


class Subscription(Enum):
    """What the consumer does with its subscription to the level queues."""

    KEEP = "keep"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


def subscription_change(slots_waiting: bool, subscribed: bool, idle_for: float) -> Subscription:
    """Subscribe when a slot waits; unsubscribe (giving back what is in hand, for other
    workers) when no slot has asked for a message for more than HOARD_LIMIT seconds.
    ``idle_for`` is the seconds since a slot last asked."""
    if slots_waiting:
        return Subscription.KEEP if subscribed else Subscription.SUBSCRIBE
    if subscribed and idle_for > HOARD_LIMIT:
        return Subscription.UNSUBSCRIBE
    return Subscription.KEEP


class EarlyAck(Enum):
    """What the consumer does with a message it watches for an early ack."""

    KEEP_WATCHING = "keep watching"
    FORGET = "forget"  # settled already, or its channel is gone (RabbitMQ requeued it)
    ACK = "ack"  # ack now, then forget


def early_ack(
    settled: bool, current_channel: bool, locked_at: float | None, now: float, limit: float
) -> EarlyAck:
    """Ack the message of a job whose row has been locked ``limit`` seconds or more, before
    RabbitMQ's consumer_timeout closes the channel under it: the row's lease protects the
    job from then on. A message whose row is not locked yet is never acked early."""
    if settled or not current_channel:
        return EarlyAck.FORGET
    if locked_at is not None and now - locked_at >= limit:
        return EarlyAck.ACK
    return EarlyAck.KEEP_WATCHING


@dataclass(frozen=True)
class Settle:
    """A slot's ack or nack of one message, as queued for the connection thread; the
    generation counts the consumer's channels, so that a reconnect tells old tags apart."""

    tag: int
    ack: bool
    requeue: bool = False
    generation: int = 0


@dataclass(frozen=True)
class AckFrame:
    """basic.ack: the message ``tag``, or with ``multiple`` every outstanding one up to it."""

    tag: int
    multiple: bool = False


@dataclass(frozen=True)
class NackFrame:
    """basic.nack of the message ``tag`` alone."""

    tag: int
    requeue: bool


def settle_frames(
    outstanding: Set[int], settles: Iterable[Settle], generation: int
) -> list[AckFrame | NackFrame]:
    """The frames that send ``settles`` (in queue order) on the channel of ``generation``.

    ``outstanding`` holds the channel's delivery tags whose ack or nack is not sent yet: in
    a slot's hands, in hand, or queued in ``settles``. Settles of another generation are
    dropped (their channel is gone, and RabbitMQ requeued the message with it). Acks queued
    between two nacks are one run: when the run holds every outstanding tag from the lowest
    up to some tag T, it is sent as one ``AckFrame(T, multiple=True)``, which acks exactly
    those (RabbitMQ's multiple ack covers every unsettled tag up to T, across the channel's
    consumers); the run's other acks go singly. Nacks go singly, after the acks queued
    before them and before those queued after them, so that a multiple ack never covers a
    tag whose nack is not sent yet.
    """
    left = set(outstanding)
    frames: list[AckFrame | NackFrame] = []
    run: dict[int, None] = {}  # the acks since the last nack, in queue order
    for settle in settles:
        if settle.generation != generation:
            continue
        if settle.ack:
            run[settle.tag] = None
            continue
        frames += _ack_run(run, left)  # acks queued before the nack go first
        run = {}
        frames.append(NackFrame(settle.tag, settle.requeue))
        left.discard(settle.tag)
    frames += _ack_run(run, left)
    return frames


def _ack_run(run: dict[int, None], left: set[int]) -> list[AckFrame]:
    """Frames for a run of acks: one multiple ack for the run's part that starts at the
    lowest tag ``left`` with no gap, the rest singly; their tags leave ``left``."""
    covered: set[int] = set()
    for tag in sorted(left):
        if tag not in run:
            break  # unsettled, or nacked later: no multiple ack may reach past it
        covered.add(tag)
    if len(covered) < 2:
        covered = set()  # one tag: a plain ack says the same
    frames = [AckFrame(max(covered), multiple=True)] if covered else []
    frames += [AckFrame(tag) for tag in run if tag not in covered]
    left.difference_update(run)
    return frames
