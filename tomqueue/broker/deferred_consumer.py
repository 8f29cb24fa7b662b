"""DeferredConsumer: the deferred manager's subscription to the deferred queue's wake-ups.

The manager owns the loop and the schedule; this class owns the pika connection that
carries the wake-ups. Each message's body is handed to the manager's callback, then acked:
the row is the truth, so losing a wake-up costs one poll, never a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from tomqueue.broker.connection import BROKER_ERRORS, connect
from tomqueue.broker.topology import Topology, declare_topology
from tomqueue.settings import Settings

log = logging.getLogger(__name__)

WAKE_UP_PREFETCH = 500  # wake-ups RabbitMQ may push ahead; each is acked on arrival


class DeferredConsumer:
    """Owns the deferred manager's AMQP connection; used by the manager's thread only."""

    def __init__(self, settings: Settings, on_wake_up: Callable[[bytes], None]) -> None:
        self.settings = settings
        self.topology = Topology(settings.prefix)
        self.on_wake_up = on_wake_up
        self._connection: BlockingConnection | None = None

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def open(self) -> None:
        """Connect, declare and subscribe; raises BrokerUnavailableError when down."""
        # kept before the channel is set up, so that close() ends a half-opened connection
        self._connection = connect(self.settings)
        channel = self._connection.channel()
        declare_topology(channel, self.topology, self.settings.quorum_queues)
        channel.basic_qos(prefetch_count=WAKE_UP_PREFETCH)
        channel.basic_consume(self.topology.deferred_queue, self._on_message)

    def run_once(self, time_limit: float) -> None:
        """Let pika run a while: wake-ups arrive (and call back), heartbeats flow."""
        assert self._connection is not None
        self._connection.process_data_events(time_limit=time_limit)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except BROKER_ERRORS:
                log.debug("ignored error closing the deferred consumer")

    def _on_message(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        self.on_wake_up(body)
        # acked on arrival: the row is the truth, so losing this message costs one poll
        assert method.delivery_tag is not None
        channel.basic_ack(method.delivery_tag)
