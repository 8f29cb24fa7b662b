"""Click command classes for the console scripts: a TomQueueError ends them in one line.

A process started with a bad ``TOMQUEUE_*`` value, or against a database that belongs to
another prefix, raises a TomQueueError whose message already says what is wrong and what
to do. Printed as a traceback, that sentence is buried under forty lines an operator has
to read from the bottom; printed alone, it is the whole story. The traceback is still
logged at DEBUG for whoever needs it.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import click

from tomqueue.errors import TomQueueError

log = logging.getLogger(__name__)

EXIT_ERROR = 1


def fail(exc: TomQueueError) -> NoReturn:
    """Print ``error: <message>`` on one line of stderr and exit with EXIT_ERROR."""
    log.debug("exiting on %s", type(exc).__name__, exc_info=exc)
    click.echo(f"error: {' '.join(str(exc).split())}", err=True)
    raise click.exceptions.Exit(EXIT_ERROR)


class _EndsInOneLine(click.Command):
    """Turns a TomQueueError raised while the command runs into one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TomQueueError as exc:
            fail(exc)


class Command(_EndsInOneLine):
    """A click command whose TomQueueErrors end the process with one line."""


class Group(_EndsInOneLine, click.Group):
    """A click group whose TomQueueErrors, its subcommands' included, end in one line."""
