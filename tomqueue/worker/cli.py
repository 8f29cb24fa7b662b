"""The tomqueue-worker command."""

from __future__ import annotations

import os
import sys

import click

from tomqueue.app import App
from tomqueue.app_modules import import_app_modules, set_up_app
from tomqueue.commands import Command
from tomqueue.default_app import configure, current_settings, install_default_app
from tomqueue.exception_reports import resolve_reporter
from tomqueue.logs import configure_process_logging
from tomqueue.metrics import DEFAULT_METRICS_HOST, process_metrics
from tomqueue.worker.supervisor import DEFAULT_SHUTDOWN_TIMEOUT, child_command, run_supervised


@click.command(name="tomqueue-worker", cls=Command)
@click.option("--app", "apps", multiple=True, help="Module that defines job classes (repeatable).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Jobs run at once, each on its own thread.",
)
@click.option(
    "--queues",
    "-q",
    default=None,
    metavar="NAMES",
    help=(
        "Serve only these named queues, comma-separated ('default' is the jobs enqueued "
        "with no queue). Without it (or TOMQUEUE_QUEUES): every queue, new ones found "
        "within a sweep interval."
    ),
)
@click.option("--prefix", default=None, help="Overrides TOMQUEUE_PREFIX.")
@click.option(
    "--processes",
    "-p",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes under one supervisor that restarts any that die.",
)
@click.option(
    "--max-jobs",
    type=click.IntRange(min=1),
    default=None,
    help=(
        "Stop after running this many jobs. Alone: the process finishes the jobs in hand "
        "and exits 0. With --processes above 1: each child does so and the supervisor "
        "starts a fresh one at once (worker recycling, e.g. to bound memory growth; a "
        "clean exit is not a crash and is never backed off)."
    ),
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_SHUTDOWN_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help=(
        "With --processes above 1: on SIGTERM/SIGINT, how long the children may take to "
        "finish the jobs in hand (independent of any job's max_run_time). Children still "
        "busy then are SIGKILLed, and their jobs run again on other workers; the "
        "supervisor exits 0. A second SIGTERM/SIGINT kills them at once (exit code 128 + "
        "the signal number)."
    ),
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    default=None,
    metavar="PORT",
    help=(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (with --processes, the "
        "supervisor serves every child's, summed)."
    ),
)
@click.option(
    "--metrics-host",
    default=DEFAULT_METRICS_HOST,
    show_default=True,
    help="Address the metrics endpoint listens on.",
)
# a supervised child records into the supervisor's PROMETHEUS_MULTIPROC_DIR, serving none
@click.option("--metrics-multiprocess", is_flag=True, hidden=True)
@click.option("--log-level", default="INFO", show_default=True)
def main(
    apps: tuple[str, ...],
    concurrency: int,
    queues: str | None,
    prefix: str | None,
    processes: int,
    max_jobs: int | None,
    shutdown_timeout: float,
    metrics_port: int | None,
    metrics_host: str,
    metrics_multiprocess: bool,
    log_level: str,
) -> None:
    """Run jobs until SIGTERM or SIGINT, then finish the jobs in hand and exit 0."""
    configure_process_logging(log_level)
    if prefix:
        configure(prefix=prefix)
    if queues is not None:
        configure(queues=queues)  # checked here: a bad name stops the process at start
    modules = import_app_modules(apps)
    if processes > 1:
        if prefix:
            os.environ["TOMQUEUE_PREFIX"] = prefix
        sys.exit(
            _supervise(
                apps,
                concurrency,
                processes,
                max_jobs,
                queues,
                shutdown_timeout,
                metrics_port,
                metrics_host,
                log_level,
            )
        )
    # each slot keeps a connection of its own; the rest of the pool serves sweeps and hooks
    app = App(current_settings(), pool_size=concurrency + 4)
    install_default_app(app)  # jobs that enqueue share this app's connections
    set_up_app(modules, app)
    endpoint = process_metrics(app, metrics_port, metrics_host, metrics_multiprocess)
    worker = app.worker(concurrency=concurrency, max_jobs=max_jobs)
    worker.install_signal_handlers()
    try:
        code = worker.run()
    finally:
        if endpoint is not None:
            endpoint.close()
    sys.exit(code)


def _supervise(
    apps: tuple[str, ...],
    concurrency: int,
    processes: int,
    max_jobs: int | None,
    queues: str | None,
    shutdown_timeout: float,
    metrics_port: int | None,
    metrics_host: str,
    log_level: str,
) -> int:
    """Run ``processes`` children under a Supervisor; with ``metrics_port``, serve the
    children's metrics (multiprocess mode) and the SQL gauges from here."""
    # checked here once, so a reporter that cannot load stops the supervisor at start
    # instead of every child in a restart loop
    resolve_reporter(current_settings().exception_reporter)
    command = child_command(apps, concurrency, log_level, max_jobs, queues)
    if metrics_port is not None:
        from tomqueue.metrics.serving import supervise_with_metrics

        return supervise_with_metrics(
            command, processes, shutdown_timeout, current_settings(), metrics_port, metrics_host
        )
    return run_supervised(command, processes, shutdown_timeout)
