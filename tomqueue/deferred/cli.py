"""The tomqueue-deferred command."""

from __future__ import annotations

import sys

import click

from tomqueue.commands import Command
from tomqueue.default_app import configure, default_app
from tomqueue.logs import configure_process_logging


@click.command(name="tomqueue-deferred", cls=Command)
@click.option("--prefix", default=None, help="Overrides TOMQUEUE_PREFIX.")
@click.option(
    "--horizon",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds ahead held in memory (default 60).",
)
@click.option("--log-level", default="INFO", show_default=True)
def main(prefix: str | None, horizon: float | None, log_level: str) -> None:
    """Release jobs whose run_at has come; run several for fail-over (one leads)."""
    configure_process_logging(log_level)
    changes: dict[str, object] = {}
    if prefix:
        changes["prefix"] = prefix
    if horizon:
        changes["deferred_horizon"] = horizon  # seconds; Settings checks and converts
    if changes:
        configure(**changes)
    manager = default_app().deferred_manager()
    manager.install_signal_handlers()
    sys.exit(manager.run())
