"""What the operator commands share: exit codes, the database guard, the admin service,
filter options and JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from tomqueue.admin import Admin
from tomqueue.app import App
from tomqueue.default_app import default_app
from tomqueue.errors import DatabaseUnavailableError
from tomqueue.filters import Filter, State
from tomqueue.settings import mask_url

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Exit codes scripts can trust: 0 done; 1 refused (a live worker runs the job) or not
# found; 2 a usage error (click's); 3 PostgreSQL unreachable.
EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 3


def database(runtime: App, what: Callable[[], T]) -> T:
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


def bound_runtime() -> App:
    """The runtime, once the database is known to hold this prefix's jobs: the commands
    read and change every row, so under another prefix they would touch its jobs."""
    runtime = default_app()
    database(runtime, runtime.ensure_prefix_bound)
    return runtime


def admin_call(what: Callable[[Admin], T]) -> T:
    """Call the admin service on the bound runtime (exit 3 if PostgreSQL is unreachable)."""
    runtime = bound_runtime()
    service = Admin(runtime)
    return database(runtime, lambda: what(service))


def filter_options(command: F) -> F:
    """--state, --class, --queue, --error and --priority: a tomqueue.filters.Filter."""
    options = [
        click.option(
            "--state",
            type=click.Choice([state.value for state in State]),
            help="queued (due, waiting), scheduled (later), running (locked), failed, "
            "or pending (any but failed).",
        ),
        click.option("--class", "class_name", help="Job class, full or its last part."),
        click.option("--queue", help='Named queue ("default": jobs with no queue).'),
        click.option("--error", help="Text in last_error or the handler (any case)."),
        click.option("--priority", type=int, help="Exact priority number."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_filter(
    state: str | None,
    class_name: str | None,
    queue: str | None,
    error: str | None,
    priority: int | None,
) -> Filter:
    try:
        return Filter(
            state=None if state is None else State(state),
            class_name=class_name,
            queue=queue,
            error=error,
            priority=priority,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def given(where: Filter) -> bool:
    return where != Filter()


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False))
