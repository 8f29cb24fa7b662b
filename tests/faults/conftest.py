"""Fault tests: subprocesses killed with SIGKILL at the dangerous moment, servers stopped."""

import pytest

FAST_HEALING = {
    "TOMQUEUE_SWEEP_INTERVAL": "0.5",
    "TOMQUEUE_REPUBLISH_AFTER": "2",
    "TOMQUEUE_DEFERRED_POLL_INTERVAL": "0.5",
}


@pytest.fixture
def fast_env(tq):
    """The test's environment with short sweep and republish intervals."""
    return tq.environ | FAST_HEALING
