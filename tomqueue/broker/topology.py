"""Topology: the exchange and queue names under one prefix, declared and deleted.

Each named queue (``tomqueue.queues``) has its own four level queues, so that a worker
started with ``--queues billing`` subscribes to billing's and never sees another queue's
messages. The default queue keeps the names it always had.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from tomqueue.priority import LEVELS_IN_ORDER, PriorityLevel


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

    def queue_for(self, level: PriorityLevel, queue: str | None = None) -> str:
        """The RabbitMQ queue of ``level`` in the named ``queue`` (None: the default)."""
        if queue is None:
            return f"{self.prefix}.balance.{level.value}"
        return f"{self.prefix}.queue.{queue}.{level.value}"

    @staticmethod
    def routing_key(level: PriorityLevel, queue: str | None = None) -> str:
        """The work exchange's routing key to that queue: an exact key, never a pattern
        (queue names hold no ``*`` or ``#``), and the default's keys are single words, so
        no two queues' keys can meet."""
        return level.value if queue is None else f"queue.{queue}.{level.value}"

    def all_queues(self, named: Iterable[str] = ()) -> list[str]:
        """Every queue: the default's levels, the deferred queue, then the named ones'."""
        levels = [self.queue_for(level) for level in LEVELS_IN_ORDER]
        extra = [self.queue_for(level, name) for name in named for level in LEVELS_IN_ORDER]
        return [*levels, self.deferred_queue, *extra]


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


def declare_named_queue(
    channel: BlockingChannel, topology: Topology, queue: str, quorum: bool
) -> None:
    """Declare a named queue's four level queues and their bindings (idempotent)."""
    arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    for level in LEVELS_IN_ORDER:
        name = topology.queue_for(level, queue)
        channel.queue_declare(name, durable=True, arguments=arguments)
        channel.queue_bind(
            name, topology.work_exchange, routing_key=topology.routing_key(level, queue)
        )


def delete_topology(
    channel: BlockingChannel, topology: Topology, named: Iterable[str] = ()
) -> None:
    """Remove every queue and exchange of a prefix (tests and `tomqueue` teardown)."""
    for queue in topology.all_queues(named):
        channel.queue_delete(queue)
    channel.exchange_delete(topology.work_exchange)
    channel.exchange_delete(topology.deferred_exchange)
