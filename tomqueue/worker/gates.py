"""The gate layers, between LockJob and Timeout: ConcurrencyLimit, then SerialKey.

Each passes a locked job on only once it holds a slot of its gate (``tomqueue.gates``);
otherwise the job is parked (unlocked unrun, no attempt counted) and the layer answers
PARKED. A job that passed leaves its gates after LockJob has written its outcome (a
serial key's next job must find this one deleted or updated), through ``ctx.gate_exits``.

Nobody polls: a job leaving a gate wakes as many parked jobs as the gate has free slots.
Parking and leaving never miss each other: the leaver frees its slot and *then* looks for
parked jobs; the parker commits its park and *then* wakes whoever may pass (itself, if
the slot was freed meanwhile). Either the leaver sees the park or the parker sees the free
slot (``pg_locks`` is live state). A worker that dies frees its slots with its connection;
the jobs parked behind it are woken by the next sweep (``wake_parked``).

The limit gate is outside the serial one, so a job parked at its serial key never wakes
itself by leaving the limit gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

from tomqueue.gates import Gate, limit_gate, serial_gate
from tomqueue.notifications import notification_for
from tomqueue.ports import AnnouncerPort, GateStorePort
from tomqueue.settings import Settings
from tomqueue.snapshot import JobSnapshot
from tomqueue.worker.context import WorkContext
from tomqueue.worker.outcome import Outcome

log = logging.getLogger(__name__)

Next = Callable[[WorkContext], Outcome]


class Gatekeeper:
    """What both gates do alike: park a job, leave a gate, and announce the woken."""

    def __init__(self, store: GateStorePort, announcer: AnnouncerPort, settings: Settings) -> None:
        self.store = store
        self.announcer = announcer
        self.settings = settings

    def park(self, ctx: WorkContext, gate: Gate) -> Outcome:
        row = ctx.lock.row
        assert row is not None
        if not self.store.park(gate, row.id, ctx.locked_by):
            return Outcome.DROPPED  # the row is no longer this attempt's
        log.debug("job %s parked at %s", row.id, gate.name, extra=ctx.log_extra())
        self._wake(gate)  # a slot freed since we looked: whoever may pass goes now
        return Outcome.PARKED

    def enter(self, ctx: WorkContext, gate: Gate, slot: int) -> None:
        ctx.gate_exits.append(lambda: self.leave(gate, slot))

    def release(self, gate: Gate, slot: int) -> None:
        """Free a slot this thread holds, whatever it takes."""
        try:
            self.store.leave(gate, slot)
        except Exception:
            # still held by this thread's connection: closing it is the one sure way out
            log.exception("could not free slot %s of %s; closing its connection", slot, gate.name)
            self.store.drop_slots()

    def leave(self, gate: Gate, slot: int) -> None:
        """Free the slot, then wake whoever may pass now."""
        self.release(gate, slot)
        try:
            self._wake(gate)
        except Exception:
            log.exception("could not wake the jobs parked at %s; a sweep will", gate.name)

    def _wake(self, gate: Gate) -> None:
        woken = self.store.wake(gate)
        if woken:
            announce(self.announcer, self.settings, woken)


def announce(announcer: AnnouncerPort, settings: Settings, rows: list[JobSnapshot]) -> None:
    announcer.submit([notification_for(row, settings.priority_map) for row in rows])


@lru_cache(maxsize=1024)
def _limit_gate(class_name: str, limit: int) -> Gate:
    return limit_gate(class_name, limit)


class ConcurrencyLimit:
    """A class with ``concurrency_limit = N`` runs at most N jobs at once, fleet-wide."""

    def __init__(self, keeper: Gatekeeper) -> None:
        self.keeper = keeper

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        job_class = type(ctx.job)
        if job_class.concurrency_limit is None:
            return call_next(ctx)
        gate = _limit_gate(job_class.class_name(), job_class.concurrency_limit)
        slot = self.keeper.store.take(gate)
        if slot is None:
            return self.keeper.park(ctx, gate)
        self.keeper.enter(ctx, gate, slot)
        return call_next(ctx)


class SerialKey:
    """Jobs sharing a ``serial_key()`` run one at a time, lowest id first."""

    def __init__(self, keeper: Gatekeeper) -> None:
        self.keeper = keeper

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        row = ctx.lock.row
        if row is None or row.serial_key is None:
            return call_next(ctx)
        gate = serial_gate(row.serial_key)
        (slot,) = gate.slots
        got, behind = self.keeper.store.take_turn(gate, row.id)
        if got and behind:
            self.keeper.release(gate, slot)  # an earlier job of the key goes first
        if not got or behind:
            return self.keeper.park(ctx, gate)
        self.keeper.enter(ctx, gate, slot)
        return call_next(ctx)


def leave_gates(ctx: WorkContext) -> None:
    """Leave every gate the job passed, innermost first (LockJob, after the outcome)."""
    while ctx.gate_exits:
        ctx.gate_exits.pop()()
