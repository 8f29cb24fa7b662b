"""Publisher: notifications to RabbitMQ with confirms, on one long-lived channel.

A pika connection is not thread-safe: the Publisher serialises callers with a lock and
reconnects after any loss.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tomqueue.broker.connection import BROKER_ERRORS, connect
from tomqueue.broker.topology import Topology, declare_named_queue, declare_topology
from tomqueue.errors import BrokerUnavailableError
from tomqueue.priority import PriorityLevel
from tomqueue.settings import Settings, mask_url
from tomqueue.wire import CONTENT_TYPE, Notification, encode_notification

log = logging.getLogger(__name__)

# a RabbitMQ queue of this prefix: a priority level in a named queue (None: the default)
QueuePlace = tuple[PriorityLevel, str | None]


def message_properties() -> pika.BasicProperties:
    return pika.BasicProperties(content_type=CONTENT_TYPE, delivery_mode=2)


class Publisher:
    """Publishes notifications with confirms and ``mandatory`` on one long-lived channel."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = Topology(settings.prefix)
        self._lock = threading.Lock()
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._properties = message_properties()
        self._batch_channel: BlockingChannel | None = None
        self._returned: list[bytes] = []
        # named queues declared on this connection: declared once before the first
        # message to one, so that a job for a queue no worker serves yet waits in it
        self._declared: set[str] = set()

    def _ensure_channel(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop_connection()
        self._connection = connect(self.settings)
        channel = self._connection.channel()
        declare_topology(channel, self.topology, self.settings.quorum_queues)
        channel.confirm_delivery()
        self._channel = channel
        return channel

    def _ensure_batch_channel(self) -> BlockingChannel:
        """A second channel in transaction mode: a batch is published with one commit,
        which RabbitMQ answers once every message is routed and, being persistent, on disk —
        the same promise as a confirm per message, for one round trip per batch."""
        if self._batch_channel is not None and self._batch_channel.is_open:
            return self._batch_channel
        self._ensure_channel()
        assert self._connection is not None
        channel = self._connection.channel()
        channel.add_on_return_callback(self._on_returned)
        channel.tx_select()
        self._batch_channel = channel
        return channel

    def _on_returned(
        self, channel: object, method: object, properties: object, body: bytes
    ) -> None:
        self._returned.append(body)

    def _declare_named(self, notifications: Sequence[Notification]) -> None:
        self._declare_names({note.queue for note in notifications if note.queue is not None})

    def _declare_names(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._declared:
                declare_named_queue(
                    self._ensure_channel(), self.topology, name, self.settings.quorum_queues
                )
                self._declared.add(name)

    def _drop_connection(self) -> None:
        self._batch_channel = None
        self._declared = set()
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except BROKER_ERRORS:
                log.debug("ignored error closing a broken publisher connection")

    def publish(self, notifications: Sequence[Notification]) -> None:
        """Publish each to the work exchange, routed to its priority level's queue.

        Raises BrokerUnavailableError if any was not confirmed. One retry after reconnecting
        is made, because a connection left idle past its heartbeat is normal here.
        """
        self._publish(notifications, deferred=False)

    def publish_deferred(self, notifications: Sequence[Notification]) -> None:
        """Tell the deferred manager about jobs that are not yet due.

        A wake-up only: the database stays the truth, so a lost one costs the manager's next
        poll, never the job.
        """
        self._publish(notifications, deferred=True)

    def _publish(self, notifications: Sequence[Notification], deferred: bool) -> None:
        if not notifications:
            return
        with self._lock:
            for attempt in (1, 2):
                try:
                    if not deferred:
                        self._declare_named(notifications)
                    if len(notifications) == 1:
                        self._publish_confirmed(notifications[0], deferred)
                    else:
                        self._publish_batch(notifications, deferred)
                    return
                except BrokerUnavailableError:
                    self._drop_connection()
                    raise
                except BROKER_ERRORS as exc:
                    self._drop_connection()
                    if attempt == 2:
                        raise BrokerUnavailableError(
                            f"publishing to RabbitMQ at {mask_url(self.settings.amqp_url)} "
                            f"failed: {type(exc).__name__} {exc}"
                        ) from exc

    def _publish_confirmed(self, note: Notification, deferred: bool) -> None:
        exchange, routing_key = self.route(note, deferred)
        self._ensure_channel().basic_publish(
            exchange,
            routing_key,
            encode_notification(note),
            properties=self._properties,
            mandatory=True,
        )

    def _publish_batch(self, notifications: Sequence[Notification], deferred: bool) -> None:
        channel = self._ensure_batch_channel()
        self._returned.clear()
        for note in notifications:
            exchange, routing_key = self.route(note, deferred)
            channel.basic_publish(
                exchange,
                routing_key,
                encode_notification(note),
                properties=self._properties,
                mandatory=True,
            )
        channel.tx_commit()
        assert self._connection is not None
        self._connection.process_data_events(time_limit=0)  # dispatch any basic.return
        if self._returned:
            raise BrokerUnavailableError(
                f"RabbitMQ returned {len(self._returned)} unroutable notification(s); "
                "are the queues declared under this prefix?"
            )

    def route(self, note: Notification, deferred: bool = False) -> tuple[str, str]:
        if deferred:
            return self.topology.deferred_exchange, ""
        return self.topology.work_exchange, self.topology.routing_key(note.level, note.queue)

    def queue_depths(self, places: Sequence[QueuePlace]) -> dict[QueuePlace, int]:
        """Ready messages waiting in each (level, named queue)'s RabbitMQ queue (unacked
        ones are not counted)."""
        names = {place: self.topology.queue_for(*place) for place in places}
        named = {queue for _, queue in places if queue is not None}
        counts = self.queue_info(list(names.values()), named)
        return {place: counts[name][0] for place, name in names.items()}

    def queue_info(
        self, queues: Sequence[str], named: Iterable[str] = ()
    ) -> dict[str, tuple[int, int]]:
        """(ready messages, consumers) of each of this prefix's queues, asked passively: the
        default's queues are declared with every channel, and the ``named`` queues' here
        first (a passive declare of a missing queue would close the channel)."""
        with self._lock:
            try:
                channel = self._ensure_channel()
                self._declare_names(named)
                info = {}
                for name in queues:
                    method = channel.queue_declare(name, passive=True).method
                    info[name] = (int(method.message_count), int(method.consumer_count))
                return info
            except BROKER_ERRORS as exc:
                self._drop_connection()
                raise BrokerUnavailableError(
                    f"RabbitMQ at {mask_url(self.settings.amqp_url)} is unreachable: {exc}"
                ) from exc

    def peek_head(self, level: PriorityLevel, queue: str | None = None) -> bytes | None:
        """The body of the first ready message of a level's queue, given straight back.

        AMQP has no peek: the message is taken with basic.get and returned with a nack
        that requeues it to its place at the head. The sweep uses this to tell a lost
        notification from one still waiting in a backlog.
        """
        with self._lock:
            try:
                channel = self._ensure_channel()
                self._declare_names([queue] if queue is not None else [])
                method, _properties, body = channel.basic_get(self.topology.queue_for(level, queue))
                if method is None:
                    return None
                channel.basic_nack(method.delivery_tag, requeue=True)
                return bytes(body)
            except BROKER_ERRORS as exc:
                self._drop_connection()
                raise BrokerUnavailableError(
                    f"RabbitMQ at {mask_url(self.settings.amqp_url)} is unreachable: {exc}"
                ) from exc

    def close(self) -> None:
        with self._lock:
            self._drop_connection()
