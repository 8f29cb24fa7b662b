"""RabbitMQ through pika: topology, connections, and a confirming publisher.

The only module (with the worker's consumer) that imports pika. A pika connection is not
thread-safe: the Publisher serialises callers with a lock and reconnects after any loss.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tomqueue.errors import BrokerUnavailableError
from tomqueue.priority import LEVELS_IN_ORDER, PriorityLevel
from tomqueue.settings import Settings, mask_url, split_amqp_urls
from tomqueue.wire import CONTENT_TYPE, Notification, encode_notification

log = logging.getLogger(__name__)

# Everything pika raises when the broker is unreachable, the connection or channel dies,
# or a mandatory/confirmed publish is refused.
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)
# ... and the same, plus our own wrapper: what callers of connect/publish catch
BROKER_FAILURES = (BrokerUnavailableError, pika.exceptions.AMQPError, OSError)


@dataclass(frozen=True)
class Topology:
    """Exchange and queue names under one prefix."""

    prefix: str

    @property
    def work_exchange(self) -> str:
        return f"{self.prefix}.work"

    @property
    def deferred_exchange(self) -> str:
        return f"{self.prefix}.deferred"

    @property
    def deferred_queue(self) -> str:
        return f"{self.prefix}.deferred"

    def queue_for(self, level: PriorityLevel) -> str:
        return f"{self.prefix}.balance.{level.value}"

    def all_queues(self) -> list[str]:
        return [self.queue_for(level) for level in LEVELS_IN_ORDER] + [self.deferred_queue]


def connection_parameters(settings: Settings) -> list[pika.URLParameters]:
    """One set of parameters per URL: TOMQUEUE_AMQP_URL may list cluster nodes, comma
    separated, and connecting tries them in turn. Split with ``split_amqp_urls``, which
    leaves a comma inside a password alone."""
    timeout = settings.publish_timeout.total_seconds()
    result = []
    for url in split_amqp_urls(settings.amqp_url):
        params = pika.URLParameters(url)
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.blocked_connection_timeout = max(timeout, 30.0)
        result.append(params)
    return result


def connect(settings: Settings) -> BlockingConnection:
    """Open a connection, or raise BrokerUnavailableError naming the URL without password."""
    try:
        return pika.BlockingConnection(connection_parameters(settings))
    except BROKER_ERRORS as exc:
        raise BrokerUnavailableError(
            f"RabbitMQ at {mask_url(settings.amqp_url)} is unreachable: {type(exc).__name__} {exc}"
        ) from exc


def declare_topology(channel: BlockingChannel, topology: Topology, quorum: bool) -> None:
    """Declare the durable exchanges and queues (idempotent)."""
    arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    channel.exchange_declare(topology.work_exchange, exchange_type="topic", durable=True)
    channel.exchange_declare(topology.deferred_exchange, exchange_type="fanout", durable=True)
    for level in LEVELS_IN_ORDER:
        name = topology.queue_for(level)
        channel.queue_declare(name, durable=True, arguments=arguments)
        channel.queue_bind(name, topology.work_exchange, routing_key=level.value)
    channel.queue_declare(topology.deferred_queue, durable=True, arguments=arguments)
    channel.queue_bind(topology.deferred_queue, topology.deferred_exchange)


def delete_topology(channel: BlockingChannel, topology: Topology) -> None:
    """Remove every queue and exchange of a prefix (tests and `tomqueue` teardown)."""
    for queue in topology.all_queues():
        channel.queue_delete(queue)
    channel.exchange_delete(topology.work_exchange)
    channel.exchange_delete(topology.deferred_exchange)


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

    def _drop_connection(self) -> None:
        self._batch_channel = None
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
        return self.topology.work_exchange, note.level.value

    def queue_depths(self, levels: Sequence[PriorityLevel]) -> dict[PriorityLevel, int]:
        """Ready messages waiting in each level's queue (unacked ones are not counted)."""
        with self._lock:
            try:
                channel = self._ensure_channel()
                return {
                    level: int(
                        channel.queue_declare(
                            self.topology.queue_for(level), passive=True
                        ).method.message_count
                    )
                    for level in levels
                }
            except BROKER_ERRORS as exc:
                self._drop_connection()
                raise BrokerUnavailableError(
                    f"RabbitMQ at {mask_url(self.settings.amqp_url)} is unreachable: {exc}"
                ) from exc

    def peek_head(self, level: PriorityLevel) -> bytes | None:
        """The body of the first ready message of a level's queue, given straight back.

        AMQP has no peek: the message is taken with basic.get and returned with a nack
        that requeues it to its place at the head. The sweep uses this to tell a lost
        notification from one still waiting in a backlog.
        """
        with self._lock:
            try:
                channel = self._ensure_channel()
                method, _properties, body = channel.basic_get(self.topology.queue_for(level))
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
