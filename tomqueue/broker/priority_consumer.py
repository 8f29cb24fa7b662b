"""PriorityConsumer: hands RabbitMQ messages to slot threads, highest level first.

All pika calls happen on the thread that calls ``run_once`` (the worker's main thread);
slot threads only ask for messages (``pop``) and settle them (``ack``/``nack``), and those
requests cross over to it, so heartbeats keep flowing while jobs run for hours.

The consumer subscribes to the four level queues (highest first) with a prefetch of
``3 * concurrency`` per queue, so that while slots run jobs of some level, the next
messages of that level are already in hand: a free slot takes the highest level that has
anything waiting straight from the hand, under a lock, without waking the connection
thread, without a round trip and without polling. The connection thread is woken only when
the hand runs low (or a slot finds it empty); it then sends every queued ack in one write
and takes in the next pushes in one read. In a busy worker that is one wake-up for several
jobs instead of one per job, and the connection thread was the worker's bottleneck.

Messages in hand are never hoarded: when no slot has asked for one for HOARD_LIMIT seconds
(every slot is busy with long jobs), the consumer unsubscribes and hands them back to
RabbitMQ for other workers, and subscribes again when a slot is free.

Queued acks that cover every tag still outstanding on the channel up to some tag go out as
one ``basic.ack`` with ``multiple``; other acks go singly, nacks singly in their place.

The rules themselves (which level a slot takes, when to wake, subscribe, ack early, and
which frames carry the settles) are pure functions in ``tomqueue.worker.handoff``; this
module carries them out with pika.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tomqueue.broker.connection import BROKER_ERRORS, connect
from tomqueue.broker.topology import Topology, declare_named_queue, declare_topology
from tomqueue.priority import LEVELS_IN_ORDER
from tomqueue.settings import Settings
from tomqueue.worker.handoff import (
    EARLY_ACK_CHECK_INTERVAL,
    AckFrame,
    EarlyAck,
    FairHand,
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

log = logging.getLogger(__name__)


class AmqpDelivery:
    """One message in a slot's hands; settling it is thread-safe and happens once."""

    def __init__(
        self,
        consumer: PriorityConsumer,
        channel: BlockingChannel,
        generation: int,
        delivery_tag: int,
        body: bytes,
        redelivered: bool,
        rank: int,
        queue: str | None = None,
    ) -> None:
        self.consumer = consumer
        self.channel = channel
        self.generation = generation
        self.delivery_tag = delivery_tag
        self.body = body
        self.redelivered = redelivered
        self.rank = rank
        self.queue = queue  # the named queue it came from (None: the default)
        self._settled = False
        self._lock = threading.Lock()
        self.locked_at: float | None = None

    @property
    def settled(self) -> bool:
        return self._settled

    def mark_locked(self) -> None:
        """The row is locked: from now on an early ack loses nothing (the lease protects)."""
        self.locked_at = time.monotonic()

    def _claim(self) -> bool:
        with self._lock:
            if self._settled:
                return False
            self._settled = True
            return True

    def ack(self) -> None:
        if self._claim():
            self.consumer.settle(self, ack=True, requeue=False)

    def nack(self, requeue: bool) -> None:
        if self._claim():
            self.consumer.settle(self, ack=False, requeue=requeue)


def _empty_hand() -> list[FairHand[AmqpDelivery]]:
    """Per rank, highest first: the messages in hand, taken in turn by named queue."""
    return [FairHand(lambda delivery: delivery.queue) for _ in LEVELS_IN_ORDER]


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class PopRequest:
    """A slot waiting for a message; ``arrived`` is held until one is handed over."""

    arrived: threading.Lock = field(default_factory=_held_lock)
    delivery: AmqpDelivery | None = None
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class PriorityConsumer:
    """Owns the worker's AMQP connection; used by one thread, served to many."""

    def __init__(self, settings: Settings, concurrency: int = 1) -> None:
        self.settings = settings
        self.topology = Topology(settings.prefix)
        # the named queues subscribed to (None: the default queue), in order; a worker
        # serving every queue adds the names it finds (add_queues)
        self.queues: list[str | None] = settings.queues.fixed_queues()
        self.prefetch = prefetch_for(concurrency)
        self.low_water = low_water_for(concurrency)
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._generation = 0
        self._requests: deque[PopRequest] = deque()
        # guards _requests and _in_hand: slots take from the hand directly
        self._hand_lock = threading.Lock()
        self._wake_sent = False
        self._tag_rank: dict[str, int] = {}
        self._tag_queue: dict[str, str | None] = {}
        self._in_hand: list[FairHand[AmqpDelivery]] = _empty_hand()
        # per level: messages pushed on this connection whose ack or nack is not yet sent
        self._unsettled = [0 for _ in LEVELS_IN_ORDER]
        # delivery tags pushed on this channel whose ack or nack is not yet sent
        self._outstanding: set[int] = set()
        self._in_flight: set[AmqpDelivery] = set()
        self._settles: deque[tuple[AmqpDelivery, bool, bool]] = deque()
        self._next_early_ack_check = 0.0
        self._last_request = time.monotonic()
        self.acks_sent = 0  # messages acked, and the basic.ack frames that carried them
        self.ack_frames_sent = 0

    # -- slot threads ----------------------------------------------------------------------

    def pop(self, timeout: float) -> AmqpDelivery | None:
        """Take the highest message in hand, or block until one is handed over, or
        ``timeout`` seconds pass."""
        self._last_request = time.monotonic()
        with self._hand_lock:
            delivery = self._highest_in_hand()
            if delivery is not None:
                left = len(self._in_hand[delivery.rank])
                if wake_for_settles(left, bool(self._settles), self.low_water):
                    self._wake_once()
                return delivery
            request = PopRequest()
            self._requests.append(request)
        self._wake()
        if request.arrived.acquire(timeout=timeout):
            return request.delivery
        with request.lock:
            if request.delivery is None:
                request.cancelled = True
                return None
            return request.delivery

    def settle(self, delivery: AmqpDelivery, ack: bool, requeue: bool) -> None:
        """Queue an ack or nack for the connection thread.

        No wake-up is sent: the connection thread sends every queued settle the next time
        it wakes, which is when a slot finds the hand low or empty, when a push arrives, or
        within its 0.2 s tick. RabbitMQ's prefetch window is three times the slots, so the
        acks waiting for that wake-up never hold back the next messages.
        """
        if delivery.generation == self._generation:
            self._settles.append((delivery, ack, requeue))

    def _wake_once(self) -> None:
        """Wake the connection thread, unless a wake-up is already on its way."""
        if not self._wake_sent:
            self._wake_sent = True
            self._wake()

    def _wake(self) -> None:
        connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(_nothing)
            except BROKER_ERRORS:
                log.debug("connection closed; nothing to wake")

    # -- connection thread -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    @property
    def subscribed(self) -> bool:
        return bool(self._tag_rank)

    def connect(self) -> None:
        """Open the connection and channel; raises BrokerUnavailableError when down."""
        connection = connect(self.settings)
        channel = connection.channel()
        declare_topology(channel, self.topology, self.settings.quorum_queues)
        for name in self.queues:
            if name is not None:
                declare_named_queue(channel, self.topology, name, self.settings.quorum_queues)
        channel.basic_qos(prefetch_count=self.prefetch)  # per consumer: per level and queue
        self._generation += 1
        self._connection = connection
        self._channel = channel
        self._forget_subscription()

    def lost(self) -> None:
        """Forget a broken connection; messages in hand are requeued by the broker."""
        connection = self._connection
        self._connection = self._channel = None
        self._generation += 1
        self._forget_subscription()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except BROKER_ERRORS:
                log.debug("ignored error closing a broken consumer connection")

    def close(self) -> None:
        if self.connected:
            assert self._connection is not None
            self._send_settles()
            self._unsubscribe()
            self._send_settles()
            self._connection.process_data_events(time_limit=0)
            self._connection.close()
        self._connection = None

    def run_once(self, time_limit: float) -> None:
        """Serve waiting slots, then let pika run (pushes, heartbeats, settles) a while."""
        assert self._connection is not None
        self._wake_sent = False
        self._send_settles()
        held_back = self._serve()
        busy = self._settles or held_back
        self._connection.process_data_events(time_limit=0 if busy else time_limit)
        self._send_settles()
        self._serve()
        self._ack_long_runners()

    def _forget_subscription(self) -> None:
        self._tag_rank = {}
        self._tag_queue = {}
        self._outstanding = set()
        with self._hand_lock:
            self._in_hand = _empty_hand()
            self._unsettled = [0 for _ in LEVELS_IN_ORDER]

    def add_queues(self, names: Iterable[str]) -> None:
        """Serve these named queues too (a worker serving every queue calls this with the
        names it finds); a new one is declared and, while subscribed, consumed at once."""
        new = [name for name in names if name not in self.queues]
        if not new:
            return
        self.queues.extend(new)
        channel = self._channel
        if channel is None or not channel.is_open:
            return  # connect() declares them and the next subscription takes them
        for name in new:
            declare_named_queue(channel, self.topology, name, self.settings.quorum_queues)
        if self.subscribed:
            self._consume(new)

    def _subscribe(self) -> None:
        self._consume(self.queues)

    def _consume(self, queues: Sequence[str | None]) -> None:
        channel = self._channel
        assert channel is not None
        # highest level first, so that its messages are the first pushed; a level's
        # messages from several named queues share its rank, taken in the order pushed
        for level in LEVELS_IN_ORDER:
            for queue in queues:
                tag = channel.basic_consume(
                    self.topology.queue_for(level, queue), self._on_push, auto_ack=False
                )
                self._tag_rank[tag] = level.rank
                self._tag_queue[tag] = queue

    def _unsubscribe(self) -> None:
        """Stop the pushes and give back what is in hand, for other workers to take."""
        channel = self._channel
        tags = list(self._tag_rank)
        if channel is not None and channel.is_open:
            for tag in tags:
                channel.basic_cancel(tag)  # pika requeues what was pushed but not dispatched
        with self._hand_lock:
            given_back = [d for waiting in self._in_hand for d in waiting]
            for waiting in self._in_hand:
                waiting.clear()
        for delivery in given_back:
            delivery.nack(requeue=True)
        self._tag_rank = {}
        self._tag_queue = {}

    def _on_push(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        rank = self._tag_rank.get(method.consumer_tag, len(LEVELS_IN_ORDER) - 1)
        queue = self._tag_queue.get(method.consumer_tag)
        delivery = self._track(channel, method, body, rank, queue)
        with self._hand_lock:
            self._in_hand[rank].append(delivery)

    def _track(
        self, channel: BlockingChannel, method: Any, body: bytes, rank: int, queue: str | None
    ) -> AmqpDelivery:
        """Wrap a pushed message, and watch it until it is settled."""
        delivery = AmqpDelivery(
            self,
            channel,
            self._generation,
            method.delivery_tag,
            body,
            method.redelivered,
            rank,
            queue,
        )
        self._in_flight.add(delivery)
        self._outstanding.add(method.delivery_tag)
        self._unsettled[rank] += 1
        return delivery

    def _send_settles(self) -> None:
        """Send queued acks and nacks as frames only; the next turn of pika's loop writes
        them all at once (BlockingChannel.basic_ack would flush the socket once per ack)."""
        queued = [self._settles.popleft() for _ in range(len(self._settles))]
        channel = self._channel
        if not queued or channel is None or not channel.is_open:
            return  # that channel is gone: RabbitMQ has requeued the messages already
        settles = [Settle(d.delivery_tag, ack, requeue, d.generation) for d, ack, requeue in queued]
        # frames from the tags outstanding before these settles leave them: a multiple ack
        # must reach no tag still in a slot's hands, in hand, or nacked after it
        frames = settle_frames(self._outstanding, settles, self._generation)
        for delivery, ack, _ in queued:
            if delivery.generation == self._generation:
                self._unsettled[delivery.rank] -= 1
                self._outstanding.discard(delivery.delivery_tag)
                self.acks_sent += 1 if ack else 0
        impl = getattr(channel, "_impl", channel)
        for frame in frames:
            if isinstance(frame, AckFrame):
                impl.basic_ack(frame.tag, multiple=frame.multiple)
                self.ack_frames_sent += 1
            else:
                impl.basic_nack(frame.tag, requeue=frame.requeue)

    def _pending(self) -> list[PopRequest]:
        """Slots waiting for a message (call with _hand_lock held)."""
        while self._requests and (
            self._requests[0].cancelled or self._requests[0].delivery is not None
        ):
            self._requests.popleft()
        return [r for r in self._requests if not r.cancelled and r.delivery is None]

    def _hand_over(self, request: PopRequest, delivery: AmqpDelivery) -> bool:
        with request.lock:
            if request.cancelled:
                return False
            request.delivery = delivery
            request.arrived.release()
            return True

    def _highest_in_hand(self) -> AmqpDelivery | None:
        """Take the message ``rank_to_take`` picks, or None: then the caller waits for the
        connection thread to send the acks and take in what comes. Call with _hand_lock
        held."""
        counts = [len(waiting) for waiting in self._in_hand]
        rank = rank_to_take(counts, self._unsettled, self.prefetch)
        return None if rank is None else self._in_hand[rank].popleft()

    def _serve(self) -> bool:
        """Hand messages in hand to waiting slots. True if a slot is left waiting while
        messages sit in hand, held back by acks not yet sent: pika must run at once."""
        with self._hand_lock:
            pending = self._pending()
        now = time.monotonic()
        change = subscription_change(bool(pending), self.subscribed, now - self._last_request)
        if pending:
            self._last_request = now
        if change is Subscription.SUBSCRIBE:
            self._subscribe()
        elif change is Subscription.UNSUBSCRIBE:
            self._unsubscribe()  # every slot is busy: let other workers have these
            return False
        with self._hand_lock:
            for request in pending:
                delivery = self._highest_in_hand()
                if delivery is None:
                    return any(self._in_hand)
                if not self._hand_over(request, delivery):
                    self._in_hand[delivery.rank].appendleft(delivery)
        return False

    def _ack_long_runners(self) -> None:
        """Ack the messages of jobs locked longer than early_ack_after, before RabbitMQ's
        consumer_timeout closes the channel under them; the row's lease protects them."""
        now = time.monotonic()
        if now < self._next_early_ack_check:
            return
        self._next_early_ack_check = now + EARLY_ACK_CHECK_INTERVAL
        limit = self.settings.early_ack_after.total_seconds()
        for delivery in list(self._in_flight):
            current = delivery.generation == self._generation
            action = early_ack(delivery.settled, current, delivery.locked_at, now, limit)
            if action is EarlyAck.ACK:
                delivery.ack()
            if action is not EarlyAck.KEEP_WATCHING:
                self._in_flight.discard(delivery)


def _nothing() -> None:
    """A wake-up call for the connection thread."""
