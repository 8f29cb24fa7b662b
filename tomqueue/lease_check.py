"""Which live worker leases are "a worker on this host": what ``tomqueue workers
--check-host HOST`` answers, for liveness probes (deploy/kubernetes/worker.yaml).

A worker's lease session carries the worker's name (``host pid:N key:K``) as its
``application_name``, so a host name is matched against the names PostgreSQL shows for
the live lease sessions: exact, whatever NAT, proxy or pooler lies between. An IP address
is matched against the client address PostgreSQL sees for those sessions instead, for
hosts without a stable name. Neither resolves anything, and a dead worker (rows still
locked under a lease that is gone) never counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from tomqueue.admin_results import WorkerInfo
from tomqueue.hosts import address


def live_on_host(workers: Sequence[WorkerInfo], host: str) -> list[WorkerInfo]:
    """The live workers on ``host``: by name, or by client address if ``host`` is one."""
    given = address(host)
    if given is None:
        return [w for w in workers if w.alive and w.host == host]
    return [
        w
        for w in workers
        if w.alive and w.client_addr is not None and address(w.client_addr) == given
    ]


def where(worker: WorkerInfo) -> str:
    """How the check names a live worker it did not match: its host, else its address."""
    return worker.host or worker.client_addr or f"key:{worker.key}"
