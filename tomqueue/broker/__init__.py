"""The RabbitMQ adapter: the only package that imports pika.

One module per job: names and declarations (``topology``), connecting (``connection``), the
confirming ``Publisher`` (``publisher``), the worker's ``PriorityConsumer``
(``priority_consumer``) and the deferred manager's ``DeferredConsumer``
(``deferred_consumer``). A pika connection belongs to one thread.
"""

from tomqueue.broker.connection import (
    BROKER_ERRORS,
    BROKER_FAILURES,
    connect,
    connection_parameters,
)
from tomqueue.broker.publisher import Publisher
from tomqueue.broker.topology import Topology, declare_topology, delete_topology

__all__ = [
    "BROKER_ERRORS",
    "BROKER_FAILURES",
    "Publisher",
    "Topology",
    "connect",
    "connection_parameters",
    "declare_topology",
    "delete_topology",
]
