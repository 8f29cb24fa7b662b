"""Settings: one frozen dataclass, read from the environment in one place.

Precedence is defaults < ``TOMQUEUE_*`` environment variables < ``configure()`` or CLI flags.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tomqueue.errors import ConfigurationError
from tomqueue.priority import PriorityLevel

DEFAULT_DATABASE_URL = "postgresql+psycopg://tomqueue@127.0.0.1:5432/tomqueue"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass(frozen=True)
class Settings:
    """Everything tomqueue can be told; durations are timedeltas."""

    database_url: str = DEFAULT_DATABASE_URL
    amqp_url: str = DEFAULT_AMQP_URL
    prefix: str = "tomqueue"
    priority_map: Mapping[int, PriorityLevel] = field(default_factory=dict)
    # Deferred manager: how far ahead it holds jobs in memory, and how often it looks.
    deferred_horizon: timedelta = timedelta(seconds=60)
    deferred_poll_interval: timedelta = timedelta(seconds=1)
    # Self-healing: a due, unlocked job whose notification is older than this is republished.
    republish_after: timedelta = timedelta(seconds=30)
    sweep_interval: timedelta = timedelta(seconds=2)
    # A locked job's worker lease must stay gone this long before the job is re-run, so a
    # worker whose lease connection merely dropped can take it again first.
    orphan_grace: timedelta = timedelta(seconds=4)
    # A job whose worker died this many times in a row is failed as poison.
    max_crashes: int = 5
    # Quorum queues for clustered brokers; classic durable queues otherwise.
    quorum_queues: bool = False
    # How long enqueue waits for a broker before giving up and leaving the job to the sweep.
    publish_timeout: timedelta = timedelta(seconds=5)
    # A job still running after this long has its message acked early, so that RabbitMQ's
    # consumer_timeout (30 min by default) never closes the channel under a long job; from
    # then on the row's lease, not the message, brings the job back if the worker dies.
    early_ack_after: timedelta = timedelta(seconds=60)
    # A worker or deferred leader whose host vanishes (power loss, partition) loses its
    # PostgreSQL lease within this bound: the server ends a lease session that stays
    # silent this long, and the holder steps down when its own check does not come back.
    lease_timeout: timedelta = timedelta(seconds=15)
    # After a job overruns max_run_time, how long its thread has to end (JobTimeout is
    # raised in it) before the worker process exits so that its lease dies with it.
    timeout_grace: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        if not self.prefix or any(ch.isspace() for ch in self.prefix):
            raise ConfigurationError(f"prefix must be a non-empty word, got {self.prefix!r}")
        for key, level in self.priority_map.items():
            if not isinstance(key, int) or not isinstance(level, PriorityLevel):
                raise ConfigurationError(
                    "priority_map maps int priorities to tomqueue.HIGH_PRIORITY, NORMAL_PRIORITY,"
                    f" LOW_PRIORITY or BULK_PRIORITY; got {key!r}: {level!r}"
                )
        if self.max_crashes < 1:
            raise ConfigurationError("max_crashes must be at least 1")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; unknown names are refused with the valid list."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        return dataclasses.replace(self, **changes)


_ENV_NAMES = {
    "TOMQUEUE_DATABASE_URL": "database_url",
    "TOMQUEUE_AMQP_URL": "amqp_url",
    "TOMQUEUE_PREFIX": "prefix",
}


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults overlaid with the ``TOMQUEUE_*`` variables; the only place env is read."""
    env = os.environ if environ is None else environ
    changes: dict[str, Any] = {}
    for name, attr in _ENV_NAMES.items():
        if env.get(name):
            changes[attr] = env[name]
    if env.get("TOMQUEUE_QUORUM_QUEUES"):
        changes["quorum_queues"] = env["TOMQUEUE_QUORUM_QUEUES"].lower() in {"1", "true", "yes"}
    for name, attr in _DURATION_ENV_NAMES.items():
        if env.get(name):
            changes[attr] = timedelta(seconds=_number(name, env[name]))
    if env.get("TOMQUEUE_MAX_CRASHES"):
        changes["max_crashes"] = int(_number("TOMQUEUE_MAX_CRASHES", env["TOMQUEUE_MAX_CRASHES"]))
    return Settings().replace(**changes)


_DURATION_ENV_NAMES = {
    "TOMQUEUE_DEFERRED_HORIZON": "deferred_horizon",
    "TOMQUEUE_DEFERRED_POLL_INTERVAL": "deferred_poll_interval",
    "TOMQUEUE_REPUBLISH_AFTER": "republish_after",
    "TOMQUEUE_SWEEP_INTERVAL": "sweep_interval",
    "TOMQUEUE_EARLY_ACK_AFTER": "early_ack_after",
    "TOMQUEUE_ORPHAN_GRACE": "orphan_grace",
    "TOMQUEUE_LEASE_TIMEOUT": "lease_timeout",
    "TOMQUEUE_TIMEOUT_GRACE": "timeout_grace",
}


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}") from exc


_lock = threading.Lock()
_overrides: dict[str, Any] = {}
_current: Settings | None = None


def configure(**changes: Any) -> Settings:
    """Override settings in code; later calls add to earlier ones. Returns the result."""
    global _current
    with _lock:
        candidate = settings_from_env().replace(**{**_overrides, **changes})
        _overrides.update(changes)
        _current = candidate
    _notify_listeners()
    return candidate


def reset_configuration() -> None:
    """Forget every ``configure()`` call (tests use this between cases)."""
    global _current
    with _lock:
        _overrides.clear()
        _current = None
    _notify_listeners()


def current_settings() -> Settings:
    """The settings in force: env read lazily on first use, never at import."""
    global _current
    with _lock:
        if _current is None:
            _current = settings_from_env().replace(**_overrides)
        return _current


_listeners: list[Any] = []


def on_change(callback: Any) -> None:
    """Call ``callback()`` whenever settings change (the runtime drops cached connections)."""
    _listeners.append(callback)


def _notify_listeners() -> None:
    for callback in list(_listeners):
        callback()


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for logs and error messages."""
    if "," in url:
        return ",".join(mask_url(part.strip()) for part in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
