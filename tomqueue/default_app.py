"""The process's default App and the configuration it is built from: the one slot of
mutable module state in tomqueue (with the job class registry).

``tomqueue.configure()`` records overrides here; ``tomqueue.enqueue()`` uses the default
App, built lazily from the settings in force and rebuilt when they change. A long-running
process (a worker) installs its own App instead, so that everything in that process,
including jobs enqueueing from inside ``perform``, shares one set of connections.
Importing this module connects to nothing and loads no driver.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tomqueue.settings import Settings, settings_from_env

if TYPE_CHECKING:
    from tomqueue.app import App


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    overrides: dict[str, Any] = field(default_factory=dict)
    settings: Settings | None = None
    app: App | None = None
    owned: bool = True  # built here (so closed here), or installed by a process


_slot = _Slot()


def configure(**changes: Any) -> Settings:
    """Override settings in code; later calls add to earlier ones. Returns the result.

    The default App is dropped (and closed, unless a process installed it) so the next
    enqueue builds one from the new settings.
    """
    with _slot.lock:
        candidate = settings_from_env().replace(**{**_slot.overrides, **changes})
        _slot.overrides.update(changes)
        _slot.settings = candidate
        old = _take_app()
    _close(old)
    return candidate


def reset_configuration() -> None:
    """Forget every ``configure()`` call and the default App (tests use this between cases)."""
    with _slot.lock:
        _slot.overrides.clear()
        _slot.settings = None
        old = _take_app()
    _close(old)


def current_settings() -> Settings:
    """The settings in force: env read lazily on first use, never at import."""
    with _slot.lock:
        return _settings()


def default_app() -> App:
    """The App that ``tomqueue.enqueue`` uses: the installed one, else one built lazily."""
    with _slot.lock:
        if _slot.app is None:
            from tomqueue.app import App

            _slot.app = App(_settings())
            _slot.owned = True
        return _slot.app


def install_default_app(app: App) -> None:
    """Make ``app`` this process's default (a worker does, for jobs that enqueue).

    Its settings become the settings in force. The caller keeps ownership: it is not
    closed here when replaced.
    """
    with _slot.lock:
        old = _take_app()
        _slot.app = app
        _slot.owned = False
        _slot.settings = app.settings
    _close(old)


def _settings() -> Settings:
    if _slot.settings is None:
        _slot.settings = settings_from_env().replace(**_slot.overrides)
    return _slot.settings


def _take_app() -> tuple[App, bool] | None:
    """Empty the app slot (call with the lock held); returns what was there."""
    old = None if _slot.app is None else (_slot.app, _slot.owned)
    _slot.app = None
    _slot.owned = True
    return old


def _close(old: tuple[App, bool] | None) -> None:
    if old is not None and old[1]:
        old[0].close()
