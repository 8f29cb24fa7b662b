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
import threading
import time
from collections.abc import Callable
from functools import lru_cache

from tomqueue.gates import Gate, limit_gate, serial_gate
from tomqueue.notifications import notification_for
from tomqueue.ports import AnnouncerPort, GateStorePort
from tomqueue.settings import Settings
from tomqueue.snapshot import JobSnapshot
from tomqueue.wire import Notification, encode_notification
from tomqueue.worker.context import WorkContext
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.ports import Delivery, DeliverySource

log = logging.getLogger(__name__)

# how long a slot thread believes "nobody is parked at this limit gate" (keep_or_leave)
NOBODY_PARKED_FOR = 0.1

Next = Callable[[WorkContext], Outcome]


class Gatekeeper:
    """What both gates do alike: park a job, leave a gate, and announce the woken; and the
    limit slots each slot thread keeps between jobs of one class.

    A limit slot is kept, not freed, when its job ends with nobody parked at its gate: the
    thread's next job of that class uses it with no statement at all, so a limit that is
    not binding costs a cheap look about ten times a second per thread (``keep_or_leave``).
    A kept slot is freed (and the gate's parked jobs woken) as soon as the thread runs
    anything else, finds no message (``IDLE``), or ends a job and sees someone parked; so
    a job parked behind a kept slot waits for the holder's current job (and a tenth of a
    second) or its idle second, never longer.
    """

    def __init__(self, store: GateStorePort, announcer: AnnouncerPort, settings: Settings) -> None:
        self.store = store
        self.announcer = announcer
        self.settings = settings
        self._kept = threading.local()

    def _kept_slots(self) -> dict[Gate, int]:
        kept: dict[Gate, int] | None = getattr(self._kept, "slots", None)
        if kept is None:
            kept = self._kept.slots = {}
        return kept

    def reuse(self, gate: Gate) -> int | None:
        """The slot of ``gate`` this thread kept from its last job, now this job's; the
        thread's kept slots of other gates are freed first."""
        kept = self._kept_slots()
        slot = kept.pop(gate, None)
        if kept:
            self.free_kept()
        return slot

    def free_kept(self) -> None:
        """Free every slot this thread kept, waking whoever waits for them."""
        kept = self._kept_slots()
        while kept:
            gate, slot = kept.popitem()
            self.leave(gate, slot)

    def keep_or_leave(self, gate: Gate, slot: int) -> None:
        """A limited job ended: keep its slot for the next job unless someone waits.

        "Nobody waits" is believed for ``NOBODY_PARKED_FOR`` seconds after this thread
        last saw it, so a busy thread looks about ten times a second, not once a job.
        Keeping a slot on a stale answer never breaks the limit (the slot stays taken);
        a job that parked meanwhile waits at most that long plus the holder's next job,
        whose end (or the holder going idle) looks again and lets the slot go."""
        now = time.monotonic()
        seen: dict[Gate, float] = self._nobody_parked_seen()
        if now - seen.get(gate, float("-inf")) < NOBODY_PARKED_FOR:
            self._kept_slots()[gate] = slot
            return
        try:
            waiting = self.store.anyone_parked(gate)
        except Exception:
            log.exception("could not look for jobs parked at %s", gate.name)
            waiting = True
        if waiting:
            seen.pop(gate, None)
            self.leave(gate, slot)
        else:
            seen[gate] = now
            self._kept_slots()[gate] = slot

    def _nobody_parked_seen(self) -> dict[Gate, float]:
        seen: dict[Gate, float] | None = getattr(self._kept, "nobody_parked", None)
        if seen is None:
            seen = self._kept.nobody_parked = {}
        return seen

    def park(self, ctx: WorkContext, gate: Gate) -> Outcome:
        row = ctx.lock.row
        assert row is not None
        if not self.store.park(gate, row.id, ctx.locked_by):
            return Outcome.DROPPED  # the row is no longer this attempt's
        log.debug("job %s parked at %s", row.id, gate.name, extra=ctx.log_extra())
        self._wake(gate)  # a slot freed since we looked: whoever may pass goes now
        return Outcome.PARKED

    def release(self, gate: Gate, slot: int) -> None:
        """Free a slot this thread holds, whatever it takes."""
        try:
            self.store.leave(gate, slot)
        except Exception:
            # still held by this thread's connection: closing it is the one sure way out
            log.exception("could not free slot %s of %s; closing its connection", slot, gate.name)
            self.store.drop_slots()

    def leave(self, gate: Gate, slot: int) -> None:
        """Free the slot, then wake whoever may pass now (a limit gate's parked jobs are
        looked for first, cheaply: usually there are none). A serial key's next job is
        usually parked: it is woken at once and, if this worker serves its queue, run
        next by this very thread (``HandOff``), with no trip through the broker."""
        self.release(gate, slot)
        try:
            if gate.serial_key is not None:
                self._hand_off(gate)
            elif self.store.anyone_parked(gate):
                self._wake(gate)
        except Exception:
            log.exception("could not wake the jobs parked at %s; a sweep will", gate.name)

    def pass_on(self, gate: Gate, slot: int) -> None:
        """A serial job that was handed its turn ended: if the key's next job is parked,
        wake it for this thread and keep holding the key's slot for it (``claim_passed``),
        with no unlock and no new lock between the two; else leave as usual.

        Only a job handed its turn passes it on this way: in a run of one key's jobs the
        next is nearly always parked, and a key with nothing behind it costs a statement
        more here than ``leave``."""
        try:
            woken = self.store.wake_held(gate)
        except Exception:
            log.exception("could not pass %s on; leaving it", gate.name)
            woken = []
        mine = [row for row in woken if self.settings.queues.serves(row.queue)]
        if mine:
            self._kept.passed = (gate, slot, mine[0].id)
            self._handed().append(mine[0])
            return
        if not woken:
            self.leave(gate, slot)
            return
        # its next job is in a queue this worker does not serve: let go, then announce it
        self.release(gate, slot)
        announce(self.announcer, self.settings, woken)

    def claim_passed(self, gate: Gate, job_id: int) -> bool:
        """Is this thread holding ``gate``'s slot for job ``job_id`` (``pass_on``)? If so,
        the job has its turn, and now owns the slot."""
        passed = self.passed()
        if passed is None or passed[0] != gate or passed[2] != job_id:
            return False
        self._kept.passed = None
        return True

    def passed(self) -> tuple[Gate, int, int] | None:
        """The serial slot this thread holds for a job it woke, until that job claims it."""
        found: tuple[Gate, int, int] | None = getattr(self._kept, "passed", None)
        return found

    def free_passed(self, passed: tuple[Gate, int, int]) -> None:
        """The job a slot was kept for did not claim it (its row was gone, it parked at
        its limit, the worker stopped): let go of the slot, waking whoever may pass."""
        if self.passed() == passed:
            self._kept.passed = None
            self.leave(passed[0], passed[1])

    def _hand_off(self, gate: Gate) -> None:
        woken = self.store.wake(gate, announce=False)
        mine = [row for row in woken if self.settings.queues.serves(row.queue)]
        self._handed().extend(mine)
        others = [row for row in woken if row not in mine]
        if others:
            announce(self.announcer, self.settings, others)

    def _handed(self) -> list[JobSnapshot]:
        handed: list[JobSnapshot] | None = getattr(self._kept, "handed", None)
        if handed is None:
            handed = self._kept.handed = []
        return handed

    def take_handed(self) -> JobSnapshot | None:
        """The next job this thread woke for itself, if any."""
        handed = self._handed()
        return handed.pop(0) if handed else None

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
            self.keeper.free_kept()
            return call_next(ctx)
        gate = _limit_gate(job_class.class_name(), job_class.concurrency_limit)
        slot = self.keeper.reuse(gate)
        if slot is None:
            slot = self.keeper.store.take(gate)
        if slot is None:
            return self.keeper.park(ctx, gate)
        ctx.gate_exits.append(lambda: self.keeper.keep_or_leave(gate, slot))
        return call_next(ctx)


class HandOff:
    """The DeliverySource a gated stack pops from: a serial job this slot thread woke for
    itself first (a delivery with no broker message), then the worker's own source.

    The handed job was woken unannounced: if this process dies before running it, a
    sweep or the deferred manager announces it within seconds. A local delivery that is
    requeued (an error before the lock) is announced instead; one that is acked or
    dropped settles nothing, as there is no message.
    """

    def __init__(self, source: DeliverySource, keeper: Gatekeeper) -> None:
        self.source = source
        self.keeper = keeper

    def pop(self, timeout: float) -> Delivery | None:
        row = self.keeper.take_handed()
        if row is None:
            return self.source.pop(timeout)
        note = notification_for(row, self.keeper.settings.priority_map)
        return LocalDelivery(note, self.keeper.announcer)


class LocalDelivery:
    """A notification that never went through RabbitMQ (see HandOff)."""

    redelivered = False

    def __init__(self, note: Notification, announcer: AnnouncerPort) -> None:
        self.note = note
        self.body = encode_notification(note)
        self.announcer = announcer

    def ack(self) -> None:
        pass

    def nack(self, requeue: bool) -> None:
        if requeue:
            self.announcer.submit([self.note])

    def mark_locked(self) -> None:
        pass


class FreeKeptSlots:
    """Outside Pop: a slot thread that found no message frees the limit slots it kept, and
    a serial slot kept for a job that this turn did not claim is let go."""

    def __init__(self, keeper: Gatekeeper) -> None:
        self.keeper = keeper

    def __call__(self, ctx: WorkContext, call_next: Next) -> Outcome:
        passed = self.keeper.passed()  # kept by the turn before, for this turn's job
        try:
            outcome = call_next(ctx)
        finally:
            if passed is not None:
                self.keeper.free_passed(passed)  # nothing, if the job claimed it
        if outcome is Outcome.IDLE:
            self.keeper.free_kept()
        return outcome


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
        if self.keeper.claim_passed(gate, row.id):
            # the job before it held the key and passed it on: it is the key's head
            ctx.gate_exits.append(lambda: self.keeper.pass_on(gate, slot))
            return call_next(ctx)
        got, behind = self.keeper.store.take_turn(gate, row.id)
        if got and behind:
            self.keeper.release(gate, slot)  # an earlier job of the key goes first
        if not got or behind:
            return self.keeper.park(ctx, gate)
        if isinstance(ctx.delivery, LocalDelivery):  # handed its turn: likely one of a run
            ctx.gate_exits.append(lambda: self.keeper.pass_on(gate, slot))
        else:
            ctx.gate_exits.append(lambda: self.keeper.leave(gate, slot))
        return call_next(ctx)


def leave_gates(ctx: WorkContext) -> None:
    """Leave every gate the job passed, innermost first (LockJob, after the outcome)."""
    while ctx.gate_exits:
        ctx.gate_exits.pop()()
