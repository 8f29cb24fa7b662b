"""Gates: where a job waits for a free slot of its class or for its serial key's turn.

A gate is a set of PostgreSQL session-level advisory locks. A job passes a gate by taking
one of its locks on the worker slot's own connection and holds it while it runs; it lets
go after its outcome is written. A lock dies with its connection, so a SIGKILLed or lost
worker frees its slot at once, with no timeout to wait for and no table to clean up.

- ``limit_gate``: ``concurrency_limit = N`` on a class; N locks, any free one will do.
- ``serial_gate``: a ``serial_key()``; one lock, and a job passes only as the lowest id of
  its key still in the table (so a failed or retry-waiting job holds the key).

A job that cannot pass is *parked*: unlocked, its ``parked_on`` set to the gate's name,
out of every announcement and sweep, until a job leaving the gate (or a sweep, after a
crash) wakes as many as there are free slots. The keys are hashed from the gate's name
into the two 31-bit halves of an advisory lock; the first half never equals the namespace
of the workers' leases (``tomqueue.database.ADVISORY_NAMESPACE``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tomqueue.database import ADVISORY_NAMESPACE

LIMIT_PREFIX = "limit:"
SERIAL_PREFIX = "serial:"
_HALF = 0x7FFFFFFF  # advisory lock keys are int4: stay positive so they read back as oids


@dataclass(frozen=True)
class Gate:
    """One gate: its name (``parked_on``) and its advisory locks (``space``, each slot)."""

    name: str
    space: int
    slots: tuple[int, ...]
    serial_key: str | None = None  # set for a serial gate: its turn goes by id

    @property
    def size(self) -> int:
        return len(self.slots)


def _halves(name: str) -> tuple[int, int]:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=b"tomqueue").digest()
    space = int.from_bytes(digest[:4], "big") & _HALF
    if space == ADVISORY_NAMESPACE:
        space ^= 1  # never the leases' namespace
    return space, int.from_bytes(digest[4:], "big") & _HALF


def limit_gate(class_name: str, limit: int) -> Gate:
    """``limit`` slots shared by every job of ``class_name``: locks (space, 1..limit)."""
    name = LIMIT_PREFIX + class_name
    space, _ = _halves(name)
    return Gate(name, space, tuple(range(1, limit + 1)))


def serial_gate(serial_key: str) -> Gate:
    """One slot per serial key, keyed by 62 bits of its hash (two keys share a lock only
    by a collision, which makes them wait for each other and nothing worse)."""
    name = SERIAL_PREFIX + serial_key
    space, slot = _halves(name)
    return Gate(name, space, (slot,), serial_key)


def limited_class(gate_name: str) -> str | None:
    """The class a limit gate's name is for, None for a serial gate's."""
    return gate_name[len(LIMIT_PREFIX) :] if gate_name.startswith(LIMIT_PREFIX) else None
