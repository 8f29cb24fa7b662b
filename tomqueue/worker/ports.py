"""The worker stack's ports: what its layers are given besides the app's store and
publisher, as Protocols, so the real parts (the AMQP consumer, the lease) and test fakes
both fit."""

from __future__ import annotations

from typing import Protocol


class Delivery(Protocol):
    """A message taken from RabbitMQ, settled exactly once from any thread."""

    body: bytes
    redelivered: bool

    def ack(self) -> None: ...

    def nack(self, requeue: bool) -> None: ...

    def mark_locked(self) -> None: ...


class DeliverySource(Protocol):
    """Where Pop takes messages from: the worker's consumer, highest priority first."""

    def pop(self, timeout: float) -> Delivery | None: ...


class LeaseGate(Protocol):
    """The worker's lease as LockJob sees it: no new lock while the lease is not held."""

    def wait_held(self, timeout: float) -> bool: ...
