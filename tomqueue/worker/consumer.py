"""PriorityConsumer: hands RabbitMQ messages to slot threads, highest level first.

All pika calls happen on the thread that calls ``run_once`` (the worker's main thread);
slot threads only ask for messages (``pop``) and settle them (``ack``/``nack``), and those
requests cross over through ``add_callback_threadsafe``, so heartbeats keep flowing while
jobs run for hours.

A message is fetched only when a slot asks for one, so a worker never hoards messages that
another worker could run: the strict priority order holds across the whole fleet. With a
backlog, ``basic_get`` is tried on each level in order; when every queue is empty, the
consumer subscribes to all four and sleeps until RabbitMQ pushes something (no polling).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tomqueue.broker import BROKER_ERRORS, Topology, connect, declare_topology
from tomqueue.priority import LEVELS_IN_ORDER, PriorityLevel
from tomqueue.settings import Settings

log = logging.getLogger(__name__)

EMPTY_RECHECK = 0.01  # seconds a level found empty is not asked again


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
    ) -> None:
        self.consumer = consumer
        self.channel = channel
        self.generation = generation
        self.delivery_tag = delivery_tag
        self.body = body
        self.redelivered = redelivered
        self.rank = rank
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


@dataclass
class PopRequest:
    """A slot waiting for a message."""

    event: threading.Event = field(default_factory=threading.Event)
    delivery: AmqpDelivery | None = None
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class PriorityConsumer:
    """Owns the worker's AMQP connection; used by one thread, served to many."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = Topology(settings.prefix)
        self._tag_rank: dict[str, int] = {}
        self._connection: BlockingConnection | None = None
        self._get_channel: BlockingChannel | None = None
        self._wait_channel: BlockingChannel | None = None
        self._generation = 0
        self._requests: deque[PopRequest] = deque()
        self._requests_lock = threading.Lock()
        self._consumer_tags: list[str] = []
        self._arrived: list[AmqpDelivery] = []
        self._empty_until: dict[PriorityLevel, float] = {}
        self._in_flight: set[AmqpDelivery] = set()
        self._settles: deque[tuple[AmqpDelivery, bool, bool]] = deque()
        self._next_early_ack_check = 0.0

    # -- slot threads ----------------------------------------------------------------------

    def pop(self, timeout: float) -> AmqpDelivery | None:
        """Block until a message is handed over, or ``timeout`` seconds pass."""
        request = PopRequest()
        with self._requests_lock:
            self._requests.append(request)
        self._wake()
        if request.event.wait(timeout):
            return request.delivery
        with request.lock:
            if request.delivery is None:
                request.cancelled = True
                return None
            return request.delivery

    def settle(self, delivery: AmqpDelivery, ack: bool, requeue: bool) -> None:
        """Queue an ack or nack for the connection thread.

        No wake-up is sent: the slot asks for its next message right after, and that
        request wakes the connection thread, which sends every queued settle first (an idle
        loop also sends them within its 0.2 s tick). One wake-up per job instead of two.
        """
        if delivery.generation == self._generation:
            self._settles.append((delivery, ack, requeue))

    def _send_settles(self) -> None:
        while self._settles:
            delivery, ack, requeue = self._settles.popleft()
            if delivery.generation != self._generation or not delivery.channel.is_open:
                continue  # that channel is gone: RabbitMQ has requeued the message already
            if ack:
                delivery.channel.basic_ack(delivery.delivery_tag)
            else:
                delivery.channel.basic_nack(delivery.delivery_tag, requeue=requeue)

    def _wake(self) -> None:
        connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(lambda: None)
            except BROKER_ERRORS:
                log.debug("connection closed; nothing to wake")

    # -- connection thread -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def connect(self) -> None:
        """Open the connection and channels; raises BrokerUnavailableError when down."""
        connection = connect(self.settings)
        get_channel = connection.channel()
        declare_topology(get_channel, self.topology, self.settings.quorum_queues)
        wait_channel = connection.channel()
        # one unacked message per waiting consumer: a wake-up, not a hoard
        wait_channel.basic_qos(prefetch_count=1)
        self._generation += 1
        self._connection = connection
        self._get_channel = get_channel
        self._wait_channel = wait_channel
        self._consumer_tags = []
        self._arrived = []

    def lost(self) -> None:
        """Forget a broken connection; in-hand messages are requeued by the broker."""
        connection = self._connection
        self._connection = self._get_channel = self._wait_channel = None
        self._generation += 1
        self._consumer_tags = []
        self._arrived = []
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except BROKER_ERRORS:
                log.debug("ignored error closing a broken consumer connection")

    def close(self) -> None:
        if self.connected:
            assert self._connection is not None
            self._send_settles()
            self._cancel_waiting()
            self._connection.process_data_events(time_limit=0)
            self._connection.close()
        self._connection = None

    def run_once(self, time_limit: float) -> None:
        """Serve waiting slots, then let pika run (heartbeats, settles) for a while."""
        assert self._connection is not None
        self._send_settles()
        self._serve()
        self._connection.process_data_events(
            time_limit=0 if (self._arrived or self._settles) else time_limit
        )
        self._send_settles()
        self._serve()
        self._ack_long_runners()

    def _pending(self) -> list[PopRequest]:
        with self._requests_lock:
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
            request.event.set()
            return True

    def _serve(self) -> None:
        pending = self._pending()
        if self._arrived:
            # pushed while we waited: give the highest level first, requeue the rest
            self._cancel_waiting()
            arrived = sorted(self._arrived, key=lambda d: d.rank)
            self._arrived = []
            for delivery in arrived:
                while pending and not self._hand_over(pending[0], delivery):
                    pending.pop(0)
                if pending:
                    pending.pop(0)
                else:
                    delivery.nack(requeue=True)
            pending = self._pending()
        if not pending:
            self._cancel_waiting()
            return
        if self._consumer_tags:
            return  # subscribed and waiting for a push
        while pending:
            fetched = self._get_highest()
            if fetched is None:
                self._start_waiting()
                return
            if not self._hand_over(pending[0], fetched):
                fetched.nack(requeue=True)
            pending.pop(0)

    def _get_highest(self) -> AmqpDelivery | None:
        """basic_get on each level in order; a level just found empty is skipped for
        EMPTY_RECHECK seconds, which halves the round trips while a lower level drains and
        delays a newly arrived higher job by at most that long."""
        channel = self._get_channel
        assert channel is not None
        now = time.monotonic()
        for level in LEVELS_IN_ORDER:
            if self._empty_until.get(level, 0.0) > now:
                continue
            method, _properties, body = channel.basic_get(
                self.topology.queue_for(level), auto_ack=False
            )
            if method is None:
                self._empty_until[level] = now + EMPTY_RECHECK
                continue
            if method.message_count == 0:
                self._empty_until[level] = now + EMPTY_RECHECK
            return self._track(channel, method, body, level.rank)
        return None

    def _track(self, channel: BlockingChannel, method: Any, body: bytes, rank: int) -> AmqpDelivery:
        """Wrap a message from basic_get or a push, and watch it until it is settled."""
        delivery = AmqpDelivery(
            self, channel, self._generation, method.delivery_tag, body, method.redelivered, rank
        )
        self._in_flight.add(delivery)
        return delivery

    def _ack_long_runners(self) -> None:
        """Ack the messages of jobs locked longer than early_ack_after, before RabbitMQ's
        consumer_timeout closes the channel under them; the row's lease protects them."""
        now = time.monotonic()
        if now < self._next_early_ack_check:
            return
        self._next_early_ack_check = now + 0.5
        limit = self.settings.early_ack_after.total_seconds()
        for delivery in list(self._in_flight):
            if delivery.settled or delivery.generation != self._generation:
                self._in_flight.discard(delivery)
            elif delivery.locked_at is not None and now - delivery.locked_at >= limit:
                delivery.ack()
                self._in_flight.discard(delivery)

    def _start_waiting(self) -> None:
        channel = self._wait_channel
        assert channel is not None
        for level in LEVELS_IN_ORDER:
            queue = self.topology.queue_for(level)
            tag = channel.basic_consume(queue, self._on_push, auto_ack=False)
            self._consumer_tags.append(tag)
            self._tag_rank[tag] = level.rank

    def _cancel_waiting(self) -> None:
        channel = self._wait_channel
        tags, self._consumer_tags = self._consumer_tags, []
        if channel is None or not channel.is_open:
            return
        for tag in tags:
            channel.basic_cancel(tag)
            self._tag_rank.pop(tag, None)

    def _on_push(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        rank = self._tag_rank.get(method.consumer_tag, len(LEVELS_IN_ORDER))
        self._arrived.append(self._track(channel, method, body, rank))
