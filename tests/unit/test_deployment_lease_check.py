"""`tomqueue workers --check-host`: which leases count as "a live worker on this host"
(the Kubernetes liveness probe of deploy/kubernetes/worker.yaml), from tables."""

from datetime import UTC, datetime
from ipaddress import ip_address

import pytest

from tomqueue.admin_results import WorkerInfo, workers_from
from tomqueue.hosts import address
from tomqueue.lease_check import live_on_host, where
from tomqueue.store.values import Lease

SINCE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def lease(key: int, name: str | None, client_addr: str | None, alive: bool = True) -> WorkerInfo:
    return WorkerInfo(
        key=key, name=name or f"key:{key}", alive=alive, since=SINCE, client_addr=client_addr
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("::1", "::1"),
        ("::ffff:10.1.2.3", "10.1.2.3"),  # an IPv4 client on a dual-stack listener
        ("fe80::1%eth0", "fe80::1"),
        ("pod-7f9c", None),
        ("", None),
        ("10.1.2.3/32", None),
    ],
)
def test_address_reads_what_postgresql_reports(text, expected):
    assert address(text) == (None if expected is None else ip_address(expected))


FLEET = [
    lease(1, "worker-a pid:7 key:1", "10.1.2.3"),
    lease(2, "worker-b pid:7 key:2", "10.1.2.3"),  # behind the same NAT address as worker-a
    lease(3, None, None),  # a worker too old to name its session; no address shown
    lease(4, "worker-c pid:9 key:4", "10.1.2.5", alive=False),  # gone; rows wait for a sweep
    lease(5, "worker-a.example pid:8 key:5", "::ffff:10.1.2.6"),
    lease(6, "worker-a pid:12 key:6", "10.1.2.3"),  # a second process on worker-a
]


@pytest.mark.parametrize(
    ("host", "keys"),
    [
        ("worker-a", [1, 6]),  # by name: exact, NAT or not
        ("worker-b", [2]),
        ("worker-c", []),  # dead: never counts
        ("worker-a.example", [5]),
        ("worker", []),  # no prefix matching
        ("10.1.2.3", [1, 2, 6]),  # by address: every session from it
        ("10.1.2.6", [5]),
        ("10.1.2.5", []),
        ("10.9.9.9", []),
    ],
)
def test_live_leases_on_a_host_by_name_or_by_address(host, keys):
    assert [w.key for w in live_on_host(FLEET, host)] == keys


def test_an_idle_worker_is_named_by_its_lease_session():
    leases = {
        1: Lease(1, SINCE, "10.0.0.1", "pod-1 pid:7 key:1"),
        2: Lease(2, SINCE, "10.0.0.2", None),  # a worker that set no name
        3: Lease(3, SINCE, "10.0.0.3", "pod-3 pid:7 ke"),  # cut at 63 bytes: not trusted
        4: Lease(4, SINCE, "10.0.0.4", "psql"),  # someone else's name for the session
    }
    found = workers_from(leases, [], SINCE)
    assert [(w.name, w.host) for w in found] == [
        ("pod-1 pid:7 key:1", "pod-1"),
        ("key:2", None),
        ("key:3", None),
        ("key:4", None),
    ]
    assert [where(w) for w in found] == ["pod-1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
