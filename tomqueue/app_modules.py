"""The modules named by ``--app``: imported from sys.path, then given the process's App.

A module may define ``tomqueue_setup(app)``; the process calls it once, with the App it
runs on, before any job runs. That is where an application edits its stacks
(``app.edit_worker_stack(...)``, ``app.edit_enqueue_stack(...)``) — there is no global
list of stack edits to append to.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from tomqueue.app import App

SETUP_HOOK = "tomqueue_setup"


def import_app_modules(names: Sequence[str]) -> list[ModuleType]:
    """Import each ``--app`` module, or stop with a usage error that says how to fix it."""
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            # --app follows sys.path like any import: the current directory is not on it
            # (a writable cwd must not decide what code a worker runs)
            raise click.UsageError(
                f"cannot import --app {name}: {exc}. Is the directory that holds it on "
                "PYTHONPATH? --app modules are imported from sys.path only, not from the "
                f"current directory (e.g. PYTHONPATH=/srv/app tomqueue-worker --app {name})"
            ) from exc
    return modules


def set_up_app(modules: Sequence[ModuleType], app: App) -> None:
    """Call each module's ``tomqueue_setup(app)``, in the order the modules were given."""
    for module in modules:
        setup = getattr(module, SETUP_HOOK, None)
        if setup is not None:
            if not callable(setup):
                raise click.UsageError(f"{module.__name__}.{SETUP_HOOK} is not a function")
            setup(app)
