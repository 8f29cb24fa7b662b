"""Lease bounds derived from lease_timeout: a live holder is never idle long enough for the
server to end its session, and a cut-off holder knows before anyone can take its lock."""

import pytest

from tomqueue.database import LeaseTimings
from tomqueue.errors import ConfigurationError

TIMEOUTS = [0.3, 1, 3, 15, 60, 3600]


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_holder_notices_before_the_server_ends_its_session(timeout):
    t = LeaseTimings(timeout)
    # checks come well inside the idle bound, and a third of it at the very least
    assert t.check_interval <= timeout / 6
    assert t.check_interval <= 0.5
    # the last check is sent, it goes unanswered, the deadline passes: all before the
    # server ends the silent session and another process can take the lock
    assert t.check_interval + t.check_deadline < timeout


@pytest.mark.parametrize(
    ("timeout", "idle", "interval", "count", "connect"),
    [
        (15, 5, 3, 3, 5),  # the default: dead after 5 + 3 x 3 = 14 s of silence
        (3, 1, 1, 3, 2),  # whole seconds only: 1 + 3 x 1 = 4 s, a little over the bound
        (60, 20, 13, 3, 20),
        (1, 1, 1, 3, 2),  # libpq takes a connect_timeout under 2 s as 2
    ],
)
def test_keepalives_in_whole_seconds(timeout, idle, interval, count, connect):
    t = LeaseTimings(timeout)
    assert (t.keepalives_idle, t.keepalives_interval, t.keepalives_count) == (idle, interval, count)
    assert t.connect_timeout == connect
    assert t.client_options() == {
        "connect_timeout": connect,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": count,
        "tcp_user_timeout": timeout * 1000,
    }


@pytest.mark.parametrize(
    ("server_version", "expected"),
    [
        (150004, {"idle_session_timeout": "15000ms", "tcp_user_timeout": "15000ms"}),
        (140000, {"idle_session_timeout": "15000ms", "tcp_user_timeout": "15000ms"}),
        (130012, {"tcp_user_timeout": "15000ms"}),  # keepalives and user timeout only
        (110020, {}),  # keepalives only
    ],
)
def test_session_settings_only_those_the_server_knows(server_version, expected):
    keepalives = {
        "tcp_keepalives_idle": "5s",
        "tcp_keepalives_interval": "3s",
        "tcp_keepalives_count": "3",
    }
    assert LeaseTimings(15).session_settings(server_version) == keepalives | expected


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_lease_timeout_must_be_positive(timeout):
    with pytest.raises(ConfigurationError, match="lease_timeout"):
        LeaseTimings(timeout)
