"""The tomqueue-deferred command."""

from __future__ import annotations

import sys

import click

from tomqueue.app_modules import import_app_modules, set_up_app
from tomqueue.commands import Command
from tomqueue.default_app import configure, default_app
from tomqueue.logs import configure_process_logging
from tomqueue.metrics import DEFAULT_METRICS_HOST, process_metrics


@click.command(name="tomqueue-deferred", cls=Command)
@click.option(
    "--app",
    "apps",
    multiple=True,
    help="Module that defines job classes (repeatable): their cron schedules run here.",
)
@click.option("--prefix", default=None, help="Overrides TOMQUEUE_PREFIX.")
@click.option(
    "--horizon",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds ahead held in memory (default 60).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    default=None,
    metavar="PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics.",
)
@click.option(
    "--metrics-host",
    default=DEFAULT_METRICS_HOST,
    show_default=True,
    help="Address the metrics endpoint listens on.",
)
@click.option("--log-level", default="INFO", show_default=True)
def main(
    apps: tuple[str, ...],
    prefix: str | None,
    horizon: float | None,
    metrics_port: int | None,
    metrics_host: str,
    log_level: str,
) -> None:
    """Release jobs whose run_at has come; run several for fail-over (one leads)."""
    configure_process_logging(log_level)
    changes: dict[str, object] = {}
    if prefix:
        changes["prefix"] = prefix
    if horizon:
        changes["deferred_horizon"] = horizon  # seconds; Settings checks and converts
    if changes:
        configure(**changes)
    modules = import_app_modules(apps)
    app = default_app()
    set_up_app(modules, app)
    endpoint = process_metrics(app, metrics_port, metrics_host)
    manager = app.deferred_manager()
    manager.install_signal_handlers()
    try:
        code = manager.run()
    finally:
        if endpoint is not None:
            endpoint.close()
    sys.exit(code)
