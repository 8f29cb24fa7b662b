"""GroupCall: many threads' single calls carried out as one batched call.

The worker's slots each lock a row before a job and delete it after; one statement per
job per step is most of what a worker asks of PostgreSQL. A GroupCall lets the slots
share: the first caller to arrive becomes the leader and runs one batch holding every
request waiting at that moment (its own included); callers arriving meanwhile wait, and
the first of them leads the next batch as soon as the current one returns. Nothing waits
on a timer: an idle worker's call is a batch of one, with no added latency, and a busy
worker's batches grow by themselves to the number of slots waiting (group commit, as
databases do it for their log).

If the batch raises, every caller in it gets the exception and retries on its own, as
it would have without grouping.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")


class _Ticket(Generic[Req, Res]):
    __slots__ = ("done", "error", "leads", "request", "result", "wake")

    def __init__(self, request: Req) -> None:
        self.request = request
        self.result: Res | None = None
        self.error: BaseException | None = None
        self.done = False
        self.leads = False
        # a lock taken now and released to wake the caller: cheaper than an Event (which
        # builds a Condition), and this is made once per call on the worker's hot path
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCall(Generic[Req, Res]):
    """``call(request) -> result``, carried out by ``run_batch(requests) -> results``."""

    def __init__(
        self, run_batch: Callable[[Sequence[Req]], Sequence[Res]], max_batch: int = 64
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: deque[_Ticket[Req, Res]] = deque()
        self._leader_active = False
        self.batches = 0  # how many batches ran, and how many requests they carried
        self.requests = 0

    def __call__(self, request: Req) -> Res:
        ticket: _Ticket[Req, Res] = _Ticket(request)
        with self._lock:
            self._waiting.append(ticket)
            if not self._leader_active:
                self._leader_active = True
                ticket.leads = True
        if not ticket.leads:
            ticket.wake.acquire()
        if not ticket.done:  # woken to lead, or led from the start
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]  # set with done, a Res

    def _lead(self) -> None:
        """Run one batch of whoever is waiting, then pass the lead on or give it up."""
        with self._lock:
            count = min(len(self._waiting), self._max_batch)
            batch = [self._waiting.popleft() for _ in range(count)]
        try:
            results = self._run_batch([t.request for t in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} requests gave {len(results)} results")
            for ticket, result in zip(batch, results, strict=True):
                ticket.result = result
        except BaseException as exc:  # each caller gets it and decides for itself
            for ticket in batch:
                ticket.error = exc
        with self._lock:
            self.batches += 1
            self.requests += len(batch)
            next_leader = self._waiting[0] if self._waiting else None
            if next_leader is None:
                self._leader_active = False
            else:
                next_leader.leads = True
        for ticket in batch:
            ticket.done = True
            if not ticket.leads:  # the leader is not waiting; everyone else is
                ticket.wake.release()
        if next_leader is not None:
            next_leader.wake.release()
