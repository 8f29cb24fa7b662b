"""The tomqueue-worker command."""

from __future__ import annotations

import importlib
import os
import sys

import click

from tomqueue.commands import Command
from tomqueue.logs import configure_process_logging
from tomqueue.runtime import Runtime
from tomqueue.settings import configure, current_settings
from tomqueue.worker.process import Worker
from tomqueue.worker.supervisor import DEFAULT_SHUTDOWN_TIMEOUT, Supervisor, child_command


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
@click.option("--log-level", default="INFO", show_default=True)
def main(
    apps: tuple[str, ...],
    concurrency: int,
    prefix: str | None,
    processes: int,
    max_jobs: int | None,
    shutdown_timeout: float,
    log_level: str,
) -> None:
    """Run jobs until SIGTERM or SIGINT, then finish the jobs in hand and exit 0."""
    configure_process_logging(log_level)
    if prefix:
        configure(prefix=prefix)
    for module in apps:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            # --app follows sys.path like any import: the current directory is not on it
            # (a writable cwd must not decide what code a worker runs)
            raise click.UsageError(
                f"cannot import --app {module}: {exc}. Is the directory that holds it on "
                "PYTHONPATH? --app modules are imported from sys.path only, not from the "
                f"current directory (e.g. PYTHONPATH=/srv/app tomqueue-worker --app {module})"
            ) from exc
    if processes > 1:
        if prefix:
            os.environ["TOMQUEUE_PREFIX"] = prefix
        supervisor = Supervisor(
            child_command(apps, concurrency, log_level, max_jobs), processes, shutdown_timeout
        )
        supervisor.install_signal_handlers()
        sys.exit(supervisor.run())
    # each slot keeps a connection of its own; the rest of the pool serves sweeps and hooks
    runtime = Runtime(current_settings(), pool_size=concurrency + 4)
    worker = Worker(runtime, concurrency=concurrency, max_jobs=max_jobs)
    worker.install_signal_handlers()
    sys.exit(worker.run())
