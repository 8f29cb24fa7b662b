"""The composition root: one engine, job store and publisher per settings, built lazily."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property

from sqlalchemy import Engine

from tomqueue.broker import Publisher, Topology
from tomqueue.database import make_engine, retry_on_disconnect
from tomqueue.prefix_binding import require_prefix
from tomqueue.settings import Settings, current_settings, on_change
from tomqueue.store import JobStore


class Runtime:
    """Long-lived resources for one set of settings; nothing connects until first use."""

    def __init__(self, settings: Settings, pool_size: int = 5) -> None:
        self.settings = settings
        self.topology = Topology(settings.prefix)
        self.pool_size = pool_size
        self._prefix_bound = False
        self._prefix_lock = threading.Lock()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url, pool_size=self.pool_size)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.engine)

    @cached_property
    def publisher(self) -> Publisher:
        return Publisher(self.settings)

    def ensure_prefix_bound(
        self, attempts: int | None = 3, should_stop: Callable[[], bool] | None = None
    ) -> None:
        """Refuse (ConfigurationError) a database whose jobs belong to another prefix.

        Once per Runtime, so it costs each process one round trip: the first call claims
        an unbound database for this prefix (tomqueue/prefix_binding.py); later calls
        return at once. Retried while the database is unreachable, ``attempts=None``
        until it answers (processes starting up), as other database calls are.
        """
        if self._prefix_bound:
            return
        with self._prefix_lock:
            if self._prefix_bound:
                return
            retry_on_disconnect(
                lambda: require_prefix(self.engine, self.settings.prefix),
                "check which prefix the database belongs to",
                self.settings.database_url,
                attempts=attempts,
                should_stop=should_stop,
            )
            self._prefix_bound = True

    def close(self) -> None:
        if "publisher" in self.__dict__:
            self.publisher.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The runtime for the settings in force, rebuilt when ``configure()`` changes them."""
    global _runtime
    settings = current_settings()
    with _lock:
        if _runtime is None or _runtime.settings is not settings:
            old, _runtime = _runtime, Runtime(settings)
            if old is not None:
                old.close()
        return _runtime


def _forget() -> None:
    global _runtime
    with _lock:
        old, _runtime = _runtime, None
    if old is not None:
        old.close()


on_change(_forget)
