"""``tomqueue dashboard``: serve the web dashboard with uvicorn.

It binds 127.0.0.1 unless told otherwise, and refuses any other address without a token:
the dashboard retries and deletes jobs, so it is never opened to a network by accident.
"""

from __future__ import annotations

import sys

import click

from tomqueue.hosts import is_loopback

EXIT_USAGE = 2


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8089, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="TOMQUEUE_DASHBOARD_TOKEN",
    default=None,
    help="Required on every request (login form or Authorization: Bearer); needed to bind "
    "a non-loopback address. Default: TOMQUEUE_DASHBOARD_TOKEN.",
)
@click.option(
    "--trusted-host",
    "trusted_hosts",
    multiple=True,
    help="A Host name besides localhost that a tokenless dashboard answers to.",
)
def dashboard(host: str, port: int, token: str | None, trusted_hosts: tuple[str, ...]) -> None:
    """Serve the web dashboard (needs: pip install 'tomqueue[dashboard]')."""
    if not token and not is_loopback(host):
        click.echo(
            f"error: refusing to serve the dashboard on {host} without a token: anyone who "
            "reaches it could retry and delete jobs. Give --token (or set "
            "TOMQUEUE_DASHBOARD_TOKEN), or bind 127.0.0.1.",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    try:
        import uvicorn

        from tomqueue.dashboard import create_app
    except ImportError as exc:
        click.echo(f"error: {exc}: the dashboard needs pip install 'tomqueue[dashboard]'", err=True)
        sys.exit(EXIT_USAGE)
    try:
        app = create_app(token=token or None, trusted_hosts=trusted_hosts)
    except ValueError as exc:  # a token that is too short
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"tomqueue dashboard on http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


COMMANDS = [dashboard]
