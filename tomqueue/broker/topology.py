"""Topology: the exchange and queue names under one prefix, declared and deleted."""

from __future__ import annotations

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

    def queue_for(self, level: PriorityLevel) -> str:
        return f"{self.prefix}.balance.{level.value}"

    def all_queues(self) -> list[str]:
        return [self.queue_for(level) for level in LEVELS_IN_ORDER] + [self.deferred_queue]


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
