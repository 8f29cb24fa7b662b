"""GateStore: the statements of concurrency limits and serial keys (``tomqueue.gates``).

Taking and leaving a gate's slot run on the slot thread's own connection
(``Executor.hot_rows``): a session-level advisory lock belongs to the connection that took
it, and that connection stays with the slot thread while its job runs, so the slot is held
exactly as long as the job and is freed by PostgreSQL itself if the worker dies.
"""

from __future__ import annotations

from tomqueue.gates import Gate
from tomqueue.snapshot import JobSnapshot
from tomqueue.store import statements as sql
from tomqueue.store.executor import Executor
from tomqueue.store.values import snapshots


class GateStore:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def take(self, gate: Gate) -> int | None:
        """A free slot of ``gate``, now held by this thread's connection; None if all are held."""
        params = {"space": gate.space, "size": gate.size}
        rows = self._executor.hot_rows(sql.GATE_TAKE, params)
        return int(rows[0]["slot"]) if rows else None

    def take_turn(self, gate: Gate, job_id: int) -> tuple[bool, bool]:
        """(took the serial gate's slot, a lower id of its key is still waiting or failed)."""
        params = {"space": gate.space, "slot": gate.slots[0], "key": gate.serial_key, "id": job_id}
        row = self._executor.hot_rows(sql.SERIAL_TAKE, params)[0]
        return bool(row["got"]), bool(row["behind"])

    def leave(self, gate: Gate, slot: int) -> None:
        """Let go of a slot this thread's connection holds."""
        self._executor.hot_rows(sql.GATE_LEAVE, {"space": gate.space, "slot": slot})

    def drop_slots(self) -> None:
        """Free every slot this thread holds, by closing its connection (when an unlock
        failed, the session that holds the lock is the only sure handle on it)."""
        self._executor.drop_hot()

    def park(self, gate: Gate, job_id: int, locked_by: str) -> bool:
        """Unlock a row this attempt holds, unrun and with no attempt counted, to wait at
        ``gate``; False if the attempt no longer holds it."""
        params = {"gate": gate.name, "id": job_id, "by": locked_by}
        return self._executor.hot_count(sql.PARK, params) > 0

    def anyone_parked(self, gate: Gate) -> bool:
        """Is a job parked at ``gate``? (cheap: what a job leaving a gate asks first)"""
        rows = self._executor.hot_rows(sql.PARKED_AT, {"gate": gate.name})
        return bool(rows[0]["parked"])

    def wake(self, gate: Gate, announce: bool = True) -> list[JobSnapshot]:
        """Unpark the jobs that may pass ``gate`` now (as many as its free slots, best
        first; for a serial gate, its head if its turn has come), to be announced; a
        serial head woken with ``announce=False`` is for the waker to run itself."""
        params: dict[str, object] = {
            "gate": gate.name,
            "space": gate.space,
            "first": gate.slots[0],
            "last": gate.slots[-1],
        }
        if gate.serial_key is None:
            return snapshots(self._executor.hot_rows(sql.WAKE_LIMIT, params))
        params["key"] = gate.serial_key
        params["announce"] = announce
        return snapshots(self._executor.hot_rows(sql.WAKE_SERIAL, params))

    def wake_held(self, gate: Gate) -> list[JobSnapshot]:
        """Unpark a serial key's head for the caller, which holds the key's slot and passes
        it straight on: [] if the head is not parked (not there, running, or waiting for a
        retry). The row is left unannounced, for the caller to run."""
        params = {"gate": gate.name, "key": gate.serial_key}
        return snapshots(self._executor.hot_rows(sql.WAKE_SERIAL_HELD, params))

    def parked_limits(self) -> list[str]:
        """The names of the limit gates that some job is parked at."""
        rows = self._executor.autocommit(sql.PARKED_LIMITS, {}).records
        return [str(row["name"]) for row in rows]

    def wake_serial_heads(self, parked_for: float, limit: int = 500) -> list[JobSnapshot]:
        """Unpark serial jobs whose turn has come but whom no finishing job woke (its
        worker died, or a person deleted the key's failed head)."""
        params = {"after": parked_for, "limit": limit}
        return snapshots(self._executor.write(sql.WAKE_SERIAL_HEADS, params).records)
