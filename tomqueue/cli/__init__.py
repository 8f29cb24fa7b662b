"""The ``tomqueue`` operator command: migrate, list, retry, delete and republish jobs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from tomqueue import migrate as migrations
from tomqueue import prefix_binding
from tomqueue.app import App
from tomqueue.broker import BROKER_FAILURES
from tomqueue.commands import Group
from tomqueue.default_app import configure, default_app
from tomqueue.errors import ConfigurationError, DatabaseUnavailableError
from tomqueue.logs import configure_process_logging
from tomqueue.notifications import notification_for
from tomqueue.settings import mask_url
from tomqueue.snapshot import JobSnapshot

T = TypeVar("T")

EXIT_NOT_FOUND = 1
EXIT_UNAVAILABLE = 3


def _database(runtime: App, what: Callable[[], T]) -> T:
    """Run a database call, turning "server unreachable" into a clear exit-3 error."""
    try:
        return what()
    except (OperationalError, DBAPIError, DatabaseUnavailableError) as exc:
        click.echo(
            f"error: PostgreSQL at {mask_url(runtime.settings.database_url)} is unreachable "
            f"or refused the request ({type(exc).__name__}). Is it running? Is "
            "TOMQUEUE_DATABASE_URL right? Has `tomqueue migrate` been run?",
            err=True,
        )
        sys.exit(EXIT_UNAVAILABLE)


def _bound_runtime() -> App:
    """The runtime, once the database is known to hold this prefix's jobs: the commands
    read and change every row, so under another prefix they would touch its jobs."""
    runtime = default_app()
    _database(runtime, runtime.ensure_prefix_bound)
    return runtime


def _state(row: JobSnapshot) -> str:
    if row.failed_at is not None:
        return "failed"
    if row.locked_by is not None:
        return "running"
    if row.run_at > datetime.now(UTC):
        return "scheduled"
    return "ready"


def _first_line(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = text.splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


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
    _database(runtime, lambda: migrations.upgrade(runtime.settings.database_url))
    revision = _database(
        runtime, lambda: migrations.current_revision(runtime.settings.database_url)
    )
    click.echo(f"schema at revision {revision}")
    if rebind_prefix:
        done = _database(runtime, lambda: prefix_binding.rebind_prefix(runtime.engine, prefix))
        if done.previous == prefix:
            click.echo(f"database already bound to prefix {prefix!r}")
        else:
            click.echo(f"database rebound to prefix {prefix!r} (was {done.previous!r})")
        return
    bound = _database(runtime, lambda: prefix_binding.claim_prefix(runtime.engine, prefix))
    if bound != prefix:
        raise ConfigurationError(prefix_binding.mismatch_message(bound, prefix))
    click.echo(f"database bound to prefix {bound!r}")


@main.command()
@click.option("--failed", is_flag=True, help="Only jobs that failed for good.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def jobs(failed: bool, limit: int) -> None:
    """List jobs, oldest first."""
    runtime = _bound_runtime()
    rows = _database(
        runtime, lambda: runtime.store.admin.list_jobs(failed_only=failed, limit=limit)
    )
    total = _database(runtime, lambda: runtime.store.admin.count_jobs(failed_only=failed))
    click.echo(f"{'id':>8}  {'state':<9} {'class':<36} {'pri':>4} {'att':>3}  {'run_at':<25} error")
    for row in rows:
        click.echo(
            f"{row.id:>8}  {_state(row):<9} {row.class_name[:36]:<36} {row.priority:>4} "
            f"{row.attempts:>3}  {row.run_at.isoformat(timespec='seconds'):<25} "
            f"{_first_line(row.last_error)}"
        )
    click.echo(f"{len(rows)} of {total} {'failed ' if failed else ''}job(s) shown")


@main.command()
@click.argument("job_id", type=click.IntRange(min=1))
def retry(job_id: int) -> None:
    """Make a job pending and due now, with its attempts reset."""
    runtime = _bound_runtime()
    result = _database(runtime, lambda: runtime.store.admin.retry(job_id))
    if result.running_on is not None:
        click.echo(
            f"error: job {job_id} is running on {result.running_on}; it was left alone "
            "(retrying it now could run it twice at once)",
            err=True,
        )
        sys.exit(EXIT_NOT_FOUND)
    row = result.row
    if row is None:
        click.echo(f"error: no job with id {job_id}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    try:
        runtime.publisher.publish([notification_for(row, runtime.settings.priority_map)])
        click.echo(f"job {job_id} ({row.class_name}) is pending again and announced")
    except BROKER_FAILURES as exc:
        _database(runtime, lambda: runtime.store.enqueue.unrelease([job_id]))
        click.echo(
            f"job {job_id} is pending again; RabbitMQ is unreachable ({exc}), so it will be "
            "released when the broker is back",
            err=True,
        )


@main.command()
@click.argument("job_id", type=click.IntRange(min=1))
def delete(job_id: int) -> None:
    """Delete a job (pending or failed)."""
    runtime = _bound_runtime()
    if not _database(runtime, lambda: runtime.store.admin.delete(job_id)):
        click.echo(f"error: no job with id {job_id}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    click.echo(f"job {job_id} deleted")


@main.command()
def republish() -> None:
    """Re-send the notification of every pending job (safe: a job never runs twice at once)."""
    runtime = _bound_runtime()
    sent = 0
    try:
        for batch in _database(runtime, lambda: list(runtime.store.admin.iter_due_pending())):
            notes = [notification_for(row, runtime.settings.priority_map) for row in batch]
            runtime.publisher.publish(notes)
            # marked only where run_at is still the announced one: a row rescheduled
            # meanwhile stays with the deferred manager
            announced = [(row.id, row.run_at) for row in batch]
            _database(runtime, partial(runtime.store.admin.mark_republished, announced))
            sent += len(notes)
    except BROKER_FAILURES as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    future = _database(runtime, runtime.store.admin.unrelease_future)
    click.echo(
        f"republished {sent} due job(s); {future} future job(s) handed to the deferred manager"
    )


def run() -> None:  # pragma: no cover - console entry point wrapper
    """The console script: errors are one line (see tomqueue.commands.Group)."""
    main()
