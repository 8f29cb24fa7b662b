"""The composition root: one engine, job store and publisher per settings, built lazily."""

from __future__ import annotations

import threading
from functools import cached_property

from sqlalchemy import Engine

from tomqueue.broker import Publisher, Topology
from tomqueue.database import make_engine
from tomqueue.settings import Settings, current_settings, on_change
from tomqueue.store import JobStore


class Runtime:
    """Long-lived resources for one set of settings; nothing connects until first use."""

    def __init__(self, settings: Settings, pool_size: int = 5) -> None:
        self.settings = settings
        self.topology = Topology(settings.prefix)
        self.pool_size = pool_size

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url, pool_size=self.pool_size)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.engine)

    @cached_property
    def publisher(self) -> Publisher:
        return Publisher(self.settings)

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
