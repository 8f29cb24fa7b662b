"""Named queues: which names are valid, how a worker's ``--queues`` is read, and which
jobs a worker serves. Pure: no broker, no database.

A job with no queue is in the ``default`` queue (its ``queue`` column is NULL, as in
Delayed::Job). A name becomes part of RabbitMQ queue names and routing keys, so it is
kept to letters, digits and ``_ . : -``: no space, and none of the topic wildcards
``*`` and ``#``, which would make a binding match other queues' messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_QUEUE = "default"
MAX_QUEUE_NAME = 100
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def is_queue_name(name: object) -> bool:
    return isinstance(name, str) and _QUEUE_NAME.fullmatch(name) is not None


def check_queue_name(name: object, what: str = "queue") -> str:
    """``name`` if it is a valid queue name, else a ValueError naming ``what``."""
    if not is_queue_name(name):
        raise ValueError(
            f"{what} must be 1 to {MAX_QUEUE_NAME} letters, digits or '_.:-' (starting with a "
            f"letter or digit), got {name!r}"
        )
    assert isinstance(name, str)
    return name


def stored_queue(name: str | None, what: str = "queue") -> str | None:
    """The ``queue`` column's value for a job enqueued to ``name``: NULL for the default."""
    if name is None:
        return None
    checked = check_queue_name(name, what)
    return None if checked == DEFAULT_QUEUE else checked


def shown_queue(stored: str | None) -> str:
    """A ``queue`` column's value as people name it."""
    return DEFAULT_QUEUE if stored is None else stored


@dataclass(frozen=True)
class QueueSelection:
    """The named queues a worker serves; ``names`` None means every queue, found as jobs
    for new ones are enqueued. Names are as stored: None is the default queue."""

    names: frozenset[str | None] | None = None

    @classmethod
    def every(cls) -> QueueSelection:
        return cls(None)

    @classmethod
    def of(cls, names: Iterable[str]) -> QueueSelection:
        """The queues named (``default`` for jobs with no queue); at least one."""
        stored = frozenset(stored_queue(name, "a --queues name") for name in names)
        if not stored:
            raise ValueError("--queues needs at least one queue name")
        return cls(stored)

    @classmethod
    def parse(cls, text: str | None) -> QueueSelection:
        """``"billing,default"`` as a selection; None or blank text serves every queue."""
        if text is None or not text.strip():
            return cls.every()
        return cls.of(part.strip() for part in text.split(",") if part.strip())

    @property
    def serves_all(self) -> bool:
        return self.names is None

    def serves(self, stored: str | None) -> bool:
        return self.names is None or stored in self.names

    def fixed_queues(self) -> list[str | None]:
        """The queues to subscribe to at start, default first then by name."""
        if self.names is None:
            return [None]
        return sorted(self.names, key=lambda name: (name is not None, name or ""))

    def describe(self) -> str:
        if self.names is None:
            return "every queue"
        return ",".join(shown_queue(name) for name in self.fixed_queues())
