"""The overview commands: stats (counts by state, level, queue and class) and workers."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from tomqueue.cli.common import EXIT_NOT_FOUND, admin_call, echo_json
from tomqueue.cli.table import moment, render, terminal_width
from tomqueue.lease_check import live_on_host, where
from tomqueue.store.values import StateCounts

STATES = ("queued", "scheduled", "running", "failed")


def duration(span: timedelta) -> str:
    """``3d4h``, ``2h5m``, ``4m12s``, ``9s``: two units at most."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def _counts_table(title: str, groups: dict[str, StateCounts]) -> list[str]:
    rows = [
        [name, *(str(getattr(counts, state)) for state in STATES), str(counts.total)]
        for name, counts in groups.items()
    ]
    headers = [title, *STATES, "total"]
    return render(headers, rows, flexible=(0,), right=(1, 2, 3, 4, 5), width=terminal_width())


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the stats as JSON.")
def stats(as_json: bool) -> None:
    """Jobs by state (queued, scheduled, running, failed), by level, queue and class."""
    found = admin_call(lambda admin: admin.stats())
    if as_json:
        echo_json(found.to_dict())
        return
    totals = found.totals
    click.echo(
        "  ".join(f"{state} {getattr(totals, state)}" for state in STATES)
        + f"  total {totals.total}"
    )
    age = found.oldest_queued_age
    click.echo(
        "no job is waiting for a worker"
        if age is None
        else f"the oldest queued job has waited {duration(age)}"
    )
    sections = (
        ("level", found.by_level),
        ("priority", {str(k): v for k, v in found.by_priority.items()}),
        ("queue", found.by_queue),
        ("class", found.by_class),
    )
    for title, groups in sections:
        if groups:
            click.echo("")
            for line in _counts_table(title, groups):
                click.echo(line)


def _check_host(host: str) -> None:
    """Exit 0 if a live worker lease is on ``host``, else 1: one line each."""
    found = admin_call(lambda admin: admin.workers())
    matching = live_on_host(found, host)
    if matching:
        worker = matching[0]
        click.echo(
            f"{len(matching)} live worker lease(s) on {host}: {worker.name}, "
            f"held since {moment(worker.since)} UTC"
        )
        return
    others = sorted({where(w) for w in found if w.alive})
    elsewhere = f"live leases are on {', '.join(others)}" if others else "no lease is held"
    click.echo(f"no live worker lease on {host}; {elsewhere}")
    sys.exit(EXIT_NOT_FOUND)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
@click.option(
    "--check-host",
    metavar="HOST",
    help="Check one host instead of listing: exit 0 if a live worker lease is on HOST, "
    "else exit 1, with one line either way. HOST is a host name (as the worker's "
    "hostname() gives it, matched against the name its lease session carries) or an IP "
    "address (matched against the client address PostgreSQL sees). For liveness probes: "
    'tomqueue workers --check-host "$(hostname)" in a worker\'s pod.',
)
def workers(as_json: bool, check_host: str | None) -> None:
    """Live workers (their leases) and the jobs each runs now; a dead worker is listed
    while jobs are still locked under its lease (the sweep takes them over)."""
    if check_host is not None:
        if as_json:
            raise click.UsageError("--check-host prints one line: it takes no --json")
        _check_host(check_host)
        return
    found = admin_call(lambda admin: admin.workers())
    if as_json:
        echo_json([worker.to_dict() for worker in found])
        return
    if not found:
        click.echo("no worker is running")
        return
    rows = []
    for worker in found:
        state = "alive" if worker.alive else "dead"
        since = moment(worker.since)
        if not worker.jobs:
            rows.append([worker.name, state, since, "-", "idle", ""])
        for i, job in enumerate(worker.jobs):
            head = [worker.name, state, since] if i == 0 else ["", "", ""]
            rows.append([*head, str(job.job_id), job.class_name, duration(job.running_for)])
    headers = ["worker", "state", "since (UTC)", "job", "class", "running"]
    for line in render(headers, rows, flexible=(0, 4), right=(3, 5), width=terminal_width()):
        click.echo(line)
    alive = sum(worker.alive for worker in found)
    busy = sum(len(worker.jobs) for worker in found if worker.alive)
    click.echo(f"{alive} live worker(s), running {busy} job(s)")


COMMANDS = [stats, workers]
