"""The ``tomqueue`` operator command: migrate, look at and act on jobs, republish.

Every command that reads or changes jobs calls the admin service (``tomqueue.admin``);
none writes SQL. The commands live in ``tomqueue.cli.jobs`` (jobs, show, retry, delete,
reschedule, run-now, priority), ``tomqueue.cli.overview`` (stats, workers) and
``tomqueue.cli.dashboard`` (the web dashboard) and ``tomqueue.cli.cron`` (cron).
"""

from __future__ import annotations

import sys

import click

from tomqueue import migrate as migrations
from tomqueue import prefix_binding
from tomqueue.broker import BROKER_FAILURES
from tomqueue.cli import cron as cron_commands
from tomqueue.cli import dashboard as dashboard_commands
from tomqueue.cli import jobs as job_commands
from tomqueue.cli import overview as overview_commands
from tomqueue.cli.common import EXIT_NOT_FOUND, EXIT_UNAVAILABLE, admin_call, database
from tomqueue.commands import Group
from tomqueue.default_app import configure, default_app
from tomqueue.errors import ConfigurationError
from tomqueue.logs import configure_process_logging

__all__ = ["EXIT_NOT_FOUND", "EXIT_UNAVAILABLE", "main", "run"]


@click.group(cls=Group)
@click.option("--prefix", default=None, help="Overrides TOMQUEUE_PREFIX.")
@click.option("--log-level", default="WARNING", show_default=True)
def main(prefix: str | None, log_level: str) -> None:
    """Operate tomqueue: the jobs table is in TOMQUEUE_DATABASE_URL."""
    configure_process_logging(log_level)
    if prefix:
        configure(prefix=prefix)


@main.command()
@click.option(
    "--rebind-prefix",
    is_flag=True,
    help="Bind the database to this prefix (TOMQUEUE_PREFIX or --prefix) instead of the one "
    "recorded; refused while any job is pending.",
)
def migrate(rebind_prefix: bool) -> None:
    """Bring the schema to the newest revision (safe to run again), and bind the database
    to this prefix if no prefix has claimed it yet."""
    runtime = default_app()
    prefix = runtime.settings.prefix
    database(runtime, lambda: migrations.upgrade(runtime.settings.database_url))
    revision = database(runtime, lambda: migrations.current_revision(runtime.settings.database_url))
    click.echo(f"schema at revision {revision}")
    if rebind_prefix:
        done = database(runtime, lambda: prefix_binding.rebind_prefix(runtime.engine, prefix))
        if done.previous == prefix:
            click.echo(f"database already bound to prefix {prefix!r}")
        else:
            click.echo(f"database rebound to prefix {prefix!r} (was {done.previous!r})")
        return
    bound = database(runtime, lambda: prefix_binding.claim_prefix(runtime.engine, prefix))
    if bound != prefix:
        raise ConfigurationError(prefix_binding.mismatch_message(bound, prefix))
    click.echo(f"database bound to prefix {bound!r}")


@main.command()
def republish() -> None:
    """Re-send the notification of every pending job (safe: a job never runs twice at once)."""
    try:
        report = admin_call(lambda admin: admin.republish())
    except BROKER_FAILURES as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    click.echo(
        f"republished {report.sent} due job(s); {report.future} future job(s) handed to the "
        "deferred manager"
    )


for _command in (
    *job_commands.COMMANDS,
    *overview_commands.COMMANDS,
    *dashboard_commands.COMMANDS,
    *cron_commands.COMMANDS,
):
    main.add_command(_command)


def run() -> None:  # pragma: no cover - console entry point wrapper
    """The console script: errors are one line (see tomqueue.commands.Group)."""
    main()
