"""``tomqueue cron``: the cron schedules of the job classes in ``--app`` modules."""

from __future__ import annotations

import click

from tomqueue.app_modules import import_app_modules
from tomqueue.cli.common import admin_call, echo_json
from tomqueue.cli.table import moment, render, terminal_width
from tomqueue.job import registry


@click.command()
@click.option(
    "--app",
    "apps",
    multiple=True,
    help="Module that defines job classes (repeatable), as tomqueue-deferred is given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
def cron(apps: tuple[str, ...], as_json: bool) -> None:
    """Cron schedules with the last time each enqueued its job, and the next fire time."""
    import_app_modules(apps)
    found = admin_call(lambda admin: admin.cron(registry.classes()))
    if as_json:
        echo_json([info.to_dict() for info in found])
        return
    if not found:
        click.echo("no job class with a cron schedule is loaded (give --app MODULE)")
        return
    rows = [
        [
            info.name,
            info.expression,
            info.timezone,
            moment(info.last_fire) if info.last_fire else "never",
            str(info.last_job_id) if info.last_job_id is not None else "-",
            moment(info.next_fire),
        ]
        for info in found
    ]
    headers = ["class", "cron", "time zone", "last fire (UTC)", "job", "next fire (UTC)"]
    for line in render(headers, rows, flexible=(0,), right=(4,), width=terminal_width()):
        click.echo(line)


COMMANDS = [cron]
