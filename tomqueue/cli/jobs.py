"""The job commands: jobs, show, retry, delete, reschedule, run-now, priority.

Each parses its arguments, calls ``tomqueue.admin.Admin`` and prints the result; exit
codes are in ``tomqueue.cli.common`` (0 done, 1 refused or not found, 2 usage).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import click

from tomqueue.admin import Admin, BulkReport, Outcome, Result, job_dict
from tomqueue.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    admin_call,
    echo_json,
    filter_options,
    given,
    make_filter,
)
from tomqueue.cli.table import first_line, moment, render, terminal_width
from tomqueue.filters import DEFAULT_QUEUE, Filter, State
from tomqueue.priority import level_for


@click.command()
@filter_options
@click.option("--failed", is_flag=True, help="Only jobs that failed for good (--state failed).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--after", "after_id", type=click.IntRange(min=0), help="Ids above this one.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: jobs and next_after.")
def jobs(
    state: str | None,
    class_name: str | None,
    queue: str | None,
    error: str | None,
    priority: int | None,
    failed: bool,
    limit: int,
    after_id: int | None,
    as_json: bool,
) -> None:
    """List jobs by id, a page at a time (--after the last id shown for the next page)."""
    if failed:
        if state not in (None, State.FAILED.value):
            raise click.UsageError("--failed means --state failed; give one or the other")
        state = State.FAILED.value
    where = make_filter(state, class_name, queue, error, priority)
    page = admin_call(lambda admin: admin.list_jobs(where, after_id=after_id, limit=limit))
    if as_json:
        echo_json(
            {"jobs": [job_dict(row, page.at) for row in page.jobs], "next_after": page.next_after}
        )
        return
    total = admin_call(lambda admin: admin.count(where))
    rows = [
        [
            str(row.id),
            page.state(row).value,
            row.class_name,
            row.queue or DEFAULT_QUEUE,
            str(row.priority),
            str(row.attempts),
            moment(row.run_at),
            first_line(row.last_error),
        ]
        for row in page.jobs
    ]
    headers = ["id", "state", "class", "queue", "pri", "att", "run_at (UTC)", "error"]
    for line in render(headers, rows, flexible=(2, 3, 7), right=(0, 4, 5), width=terminal_width()):
        click.echo(line)
    shown = f"{len(page.jobs)} of {total} job(s) shown ({where.describe()})"
    more = f"; next page: --after {page.next_after}" if page.next_after is not None else ""
    click.echo(shown + more)


@click.command()
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
def show(job_id: int, as_json: bool) -> None:
    """Everything about one job, its last error's traceback included."""

    details = admin_call(lambda admin: admin.show(job_id))
    if details is None:
        click.echo(f"error: no job with id {job_id}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    if as_json:
        echo_json(details)
        return
    details["priority"] = f"{details['priority']} ({details['level']})"
    details.pop("level")
    details["queue"] = details["queue"] or f"{DEFAULT_QUEUE} (none named)"
    last_error = details.pop("last_error")
    details["status"] = _status_line(details["status"])
    for name, value in details.items():
        click.echo(f"{name:<12} {'-' if value is None else value}")
    if last_error:
        click.echo("last_error:")
        click.echo(last_error)


def _status_line(status: dict[str, object] | None) -> str | None:
    """ "working, 40/100 (40%), step=B" from ``JobStatus.to_dict()``."""
    if status is None:
        return None
    parts = [str(status["state"])]
    value, total, progress = status["value"], status["total"], status["progress"]
    if total is not None:
        shown = f"{progress:.0%}" if isinstance(progress, float) else "?"
        parts.append(f"{value}/{total} ({shown})")
    elif value is not None:
        parts.append(f"progress {value}")
    fixed = {"id", "state", "progress", "value", "total"}
    parts += [f"{key}={value!r}" for key, value in status.items() if key not in fixed]
    return ", ".join(parts)


def _act_on_ids(
    ids: tuple[int, ...], act: Callable[[Admin, int], Outcome], did: str, refuse_reason: str
) -> None:
    """Act on each id; exit 1 if any was refused or not found (the others are done)."""
    results = [admin_call(partial(_call, act, job_id)) for job_id in ids]
    if not all([_report(outcome, did, refuse_reason) for outcome in results]):
        sys.exit(EXIT_REFUSED)


def _call(act: Callable[[Admin, int], Outcome], job_id: int, admin: Admin) -> Outcome:
    return act(admin, job_id)


def _report(outcome: Outcome, did: str, refuse_reason: str) -> bool:
    """Print what an action on one job did; False if it was refused or found nothing."""
    if outcome.result is Result.RUNNING:
        click.echo(
            f"error: job {outcome.job_id} is running on {outcome.running_on}; it was left "
            f"alone ({refuse_reason})",
            err=True,
        )
        return False
    if outcome.result is Result.NOT_FOUND:
        click.echo(f"error: no job with id {outcome.job_id}", err=True)
        return False
    _report_done(outcome, did)
    return True


def _report_done(outcome: Outcome, did: str) -> None:
    row = outcome.row
    assert row is not None
    what = f"job {outcome.job_id} ({row.class_name}) {did}"
    if outcome.broker_error is not None:
        click.echo(
            f"{what}; RabbitMQ is unreachable ({outcome.broker_error}), so it will be "
            "released when the broker is back",
            err=True,
        )
    elif outcome.announced:
        click.echo(f"{what} and announced")
    else:
        click.echo(what)


def _bulk(
    ids: tuple[int, ...],
    everything: bool,
    yes: bool,
    where: Filter,
    verb: str,
    default_state: State | None = None,
) -> Filter | None:
    """Check the ids-or---all usage; for --all without --yes, print the dry run and exit 0.
    Returns the filter to act on (None: act on the ids)."""
    if ids and everything:
        raise click.UsageError("give job ids or --all with filters, not both")
    if not ids and not everything:
        raise click.UsageError("give one or more job ids, or --all with filters")
    if ids:
        if given(where):
            raise click.UsageError("filters go with --all, not with job ids")
        return None
    if where.state is None and default_state is not None:
        where = replace(where, state=default_state)
    if not yes:
        matching = admin_call(lambda admin: admin.count(where))
        running = 0
        if where.state in (None, State.PENDING, State.RUNNING):
            running = admin_call(lambda admin: admin.count(replace(where, state=State.RUNNING)))
        held = f" ({running} of them locked by a worker; those a live worker runs are skipped)"
        click.echo(
            f"would {verb} {matching} job(s) matching {where.describe()}"
            f"{held if running else ''}; nothing done: add --yes to {verb} them"
        )
        sys.exit(0)
    return where


def _report_bulk(report: BulkReport, did: str) -> None:
    click.echo(f"{did} {report.done} job(s) matching {report.where.describe()}")
    if report.unannounced:
        click.echo(
            f"{report.unannounced} of them not announced: RabbitMQ is unreachable "
            f"({report.broker_error}); they will be released when the broker is back",
            err=True,
        )
    if report.skipped:
        listed = ", ".join(f"{held.job_id} (on {held.running_on})" for held in report.skipped[:20])
        more = f" and {len(report.skipped) - 20} more" if len(report.skipped) > 20 else ""
        click.echo(
            f"skipped {len(report.skipped)} job(s) a live worker is running: {listed}{more}",
            err=True,
        )
        sys.exit(EXIT_REFUSED)


def _bulk_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option("--yes", is_flag=True, help="With --all: act (else a dry run).")(command)
    command = click.option("--all", "everything", is_flag=True, help="Every job matching.")(command)
    command = filter_options(command)
    return click.argument("ids", nargs=-1, type=click.IntRange(min=1))(command)


@click.command()
@_bulk_options
def retry(
    ids: tuple[int, ...],
    everything: bool,
    yes: bool,
    state: str | None,
    class_name: str | None,
    queue: str | None,
    error: str | None,
    priority: int | None,
) -> None:
    """Make jobs pending and due now, with fresh attempts: `retry ID...`, or
    `retry --all [filters] --yes` (--state defaults to failed; without --yes, a dry run).
    A job a live worker is running is left alone (exit 1)."""
    where = make_filter(state, class_name, queue, error, priority)
    target = _bulk(ids, everything, yes, where, "retry", default_state=State.FAILED)
    if target is None:
        _act_on_ids(ids, Admin.retry, "is pending again", "retrying it now could run it twice")
        return
    _report_bulk(admin_call(lambda admin: admin.retry_all(target)), "retried")


@click.command()
@_bulk_options
def delete(
    ids: tuple[int, ...],
    everything: bool,
    yes: bool,
    state: str | None,
    class_name: str | None,
    queue: str | None,
    error: str | None,
    priority: int | None,
) -> None:
    """Delete jobs: `delete ID...`, or `delete --all [filters] --yes` (without --yes, a
    dry run). A job a live worker is running is left alone (exit 1)."""
    where = make_filter(state, class_name, queue, error, priority)
    target = _bulk(ids, everything, yes, where, "delete")
    if target is None:
        _act_on_ids(ids, Admin.delete, "deleted", "its worker is running it")
        return
    _report_bulk(admin_call(lambda admin: admin.delete_all(target)), "deleted")


def _parse_at(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--at") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@click.command()
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--at", "at_text", help="ISO 8601 time (UTC unless it names its offset).")
@click.option(
    "--in", "in_seconds", type=click.FloatRange(0, 100 * 365 * 86400), help="Seconds from now."
)
def reschedule(job_id: int, at_text: str | None, in_seconds: float | None) -> None:
    """Make a job run at another time (a failed one comes back with fresh attempts).
    A job a live worker is running is left alone (exit 1)."""
    if (at_text is None) == (in_seconds is None):
        raise click.UsageError("give exactly one of --at TIME and --in SECONDS")
    at = _parse_at(at_text) if at_text is not None else timedelta(seconds=in_seconds or 0)
    if isinstance(at, datetime) and not 1 < at.astimezone(UTC).year < 9999:
        raise click.BadParameter("must be between the years 2 and 9998", param_hint="--at")
    outcome = admin_call(lambda admin: admin.reschedule(job_id, at))
    row = outcome.row
    if outcome.done and row is not None and not outcome.announced and not outcome.broker_error:
        click.echo(f"job {job_id} ({row.class_name}) runs at {row.run_at.isoformat()}")
    elif not _report(outcome, "is due now", "rescheduling it could run it twice"):
        sys.exit(EXIT_REFUSED)


@click.command("run-now")
@click.argument("ids", nargs=-1, required=True, type=click.IntRange(min=1))
def run_now(ids: tuple[int, ...]) -> None:
    """Make jobs due now (a failed one comes back with fresh attempts). A job a live
    worker is running is left alone (exit 1)."""
    _act_on_ids(ids, Admin.run_now, "is due now", "running it now could run it twice")


# "-5" is a priority, not an unknown option
@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("job_id", type=click.IntRange(min=1))
@click.argument("new_priority", metavar="PRIORITY", type=click.IntRange(-(2**31), 2**31 - 1))
def priority(job_id: int, new_priority: int) -> None:
    """Give a job another priority (lower runs first, as in Delayed::Job)."""

    outcome = admin_call(lambda admin: admin.change_priority(job_id, new_priority))
    level = level_for(new_priority, admin_call(lambda admin: admin.app.settings.priority_map))
    if not _report(outcome, f"has priority {new_priority} ({level.value})", ""):
        sys.exit(EXIT_NOT_FOUND)


COMMANDS = [jobs, show, retry, delete, reschedule, run_now, priority]
