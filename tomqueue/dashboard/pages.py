"""The pages a person reads: overview, jobs, one job, workers, queues; and the JSON API.

Sync functions: Starlette runs them on its thread pool, where the admin service's
blocking database calls belong. Each reads through ``tomqueue.admin`` and renders a
template; none writes SQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tomqueue.admin_results import job_dict
from tomqueue.dashboard import charts, formatting
from tomqueue.dashboard.context import dashboard_of
from tomqueue.dashboard.forms import FILTER_FIELDS, FormError, filter_fields, parse_list_query
from tomqueue.dashboard.notices import notice_from
from tomqueue.errors import BrokerUnavailableError
from tomqueue.filters import State

PAGE_SIZE = 50
# the overview's chart windows: hours shown -> bucket width
WINDOWS = {1: timedelta(minutes=1), 3: timedelta(minutes=2), 6: timedelta(minutes=5),
           24: timedelta(minutes=15)}  # fmt: skip


def overview(request: Request) -> Response:
    parts = dashboard_of(request)
    hours = request.query_params.get("hours", "1")
    window = int(hours) if hours.isdigit() and int(hours) in WINDOWS else 1
    stats = parts.stats_cache.get(parts.admin.stats)
    flow = parts.admin.throughput(timedelta(hours=window), WINDOWS[window])
    succeeded = charts.bar_chart([(p.bucket, p.succeeded) for p in flow.points], flow.bucket)
    failed = charts.bar_chart([(p.bucket, p.failed) for p in flow.points], flow.bucket)
    return parts.page(
        request,
        "overview.html",
        stats=stats,
        window=window,
        windows=list(WINDOWS),
        succeeded=succeeded,
        failed=failed,
        bucket=formatting.duration(flow.bucket),
        states=[s.value for s in State if s is not State.PENDING],
    )


def jobs(request: Request) -> Response:
    parts = dashboard_of(request)
    fields = dict(request.query_params)
    try:
        query = parse_list_query(fields)
    except FormError as exc:
        return parts.page(request, "error.html", 400, title="Bad filter", message=str(exc))
    page = parts.admin.list_jobs(query.where, query.after, PAGE_SIZE)
    return parts.page(
        request,
        "jobs.html",
        page=page,
        rows=[(row, page.state(row).value) for row in page.jobs],
        query=query,
        fields=filter_fields(query.where),
        filter_names=FILTER_FIELDS,
        states=[s.value for s in State],
        described=query.where.describe(),
        notice=notice_from(request.query_params),
        next_link=None if page.next_after is None else query.params(page.next_after),
        first_link=query.params() if query.after is not None else None,
    )


def job(request: Request) -> Response:
    parts = dashboard_of(request)
    job_id: int = request.path_params["job_id"]
    row = parts.admin.get(job_id)
    status = parts.admin.app.status(job_id)
    notice = notice_from(request.query_params)
    if row is None and status is None:
        return parts.page(
            request,
            "error.html",
            404,
            title=f"Job {job_id} not found",
            message="No such job: it finished and its status expired, was deleted, or never "
            "existed.",
            notice=notice,
        )
    at = parts.admin.db_now()
    details: dict[str, Any] | None = None if row is None else job_dict(row, at)
    return parts.page(
        request,
        "job.html",
        job_id=job_id,
        row=row,
        details=details,
        details_at=at,
        handler=None if row is None else formatting.pretty_handler(row.handler),
        status=status,
        notice=notice,
    )


def workers(request: Request) -> Response:
    parts = dashboard_of(request)
    found = parts.admin.workers()
    return parts.page(
        request,
        "workers.html",
        workers=found,
        deferred=parts.admin.deferred(),
        at=parts.admin.db_now(),
    )


def queues(request: Request) -> Response:
    parts = dashboard_of(request)
    broker_error = None
    try:
        found = parts.admin.queues()
    except BrokerUnavailableError as exc:
        found, broker_error = [], str(exc)
    stats = parts.stats_cache.get(parts.admin.stats)
    return parts.page(request, "queues.html", queues=found, broker_error=broker_error, stats=stats)


def api_job(request: Request) -> Response:
    parts = dashboard_of(request)
    status = parts.admin.app.status(request.path_params["job_id"])
    if status is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse(status.to_dict())


def api_stats(request: Request) -> Response:
    parts = dashboard_of(request)
    return JSONResponse(parts.stats_cache.get(parts.admin.stats).to_dict())
