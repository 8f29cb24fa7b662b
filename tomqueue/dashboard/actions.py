"""The actions: POST handlers that change jobs through the admin service.

Each action is two steps, both POSTs carrying the CSRF token: the first renders a
confirmation page saying what will happen (for a bulk action, to how many jobs), the
second (``confirmed=yes``) acts and redirects to a page with a notice (post, redirect,
get: a reload does not act twice). A job that a live worker runs is refused by the
admin service itself, so the page cannot retry or delete it from under its worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tomqueue.admin import Admin, BulkReport, Outcome, Result
from tomqueue.dashboard.context import checked_form, dashboard_of
from tomqueue.dashboard.forms import (
    FormError,
    filter_fields,
    parse_filter,
    parse_priority,
    parse_reschedule,
)
from tomqueue.dashboard.security import CSRF_FIELD

# action -> (the button's words, the notice code on success)
JOB_ACTIONS = {
    "retry": ("Retry", "retried"),
    "delete": ("Delete", "deleted"),
    "run-now": ("Run now", "ran"),
    "reschedule": ("Reschedule", "rescheduled"),
    "priority": ("Change priority", "priority"),
}
BULK_ACTIONS = {"retry": ("Retry all", "bulk_retried"), "delete": ("Delete all", "bulk_deleted")}


async def job_action(request: Request) -> Response:
    parts = dashboard_of(request)
    job_id: int = request.path_params["job_id"]
    action: str = request.path_params["action"]
    if action not in JOB_ACTIONS:
        return parts.page(request, "error.html", 404, title="No such action", message=action)
    fields = await checked_form(request)
    try:
        act = _job_call(action, job_id, fields)
    except FormError as exc:
        return parts.page(request, "error.html", 400, title="Cannot do that", message=str(exc))
    if fields.get("confirmed") != "yes":
        row = await run_in_threadpool(parts.admin.get, job_id)
        return parts.page(
            request,
            "confirm.html",
            action_url=request.url_for("job_action", job_id=job_id, action=action),
            cancel_url=request.url_for("job", job_id=job_id),
            button=JOB_ACTIONS[action][0],
            question=_question(action, job_id, fields),
            row=row,
            count=None,
            fields=_carried(fields),
        )
    outcome: Outcome = await run_in_threadpool(act, parts.admin)
    parts.stats_cache.clear()
    gone = action == "delete" and outcome.done
    target = request.url_for("jobs") if gone else request.url_for("job", job_id=job_id)
    code = {Result.DONE: JOB_ACTIONS[action][1], Result.RUNNING: "running"}.get(
        outcome.result, "gone"
    )
    query = {"notice": code, "job": str(job_id)}
    if outcome.broker_error is not None:
        query["broker"] = "down"
    return RedirectResponse(f"{target}?{urlencode(query)}", status_code=303)


async def bulk_action(request: Request) -> Response:
    parts = dashboard_of(request)
    action: str = request.path_params["action"]
    if action not in BULK_ACTIONS:
        return parts.page(request, "error.html", 404, title="No such action", message=action)
    fields = await checked_form(request)
    try:
        where = parse_filter(fields)
    except FormError as exc:
        return parts.page(request, "error.html", 400, title="Bad filter", message=str(exc))
    back = f"{request.url_for('jobs')}?{urlencode(_carried(fields))}"
    if fields.get("confirmed") != "yes":
        count = await run_in_threadpool(parts.admin.count, where)
        return parts.page(
            request,
            "confirm.html",
            action_url=request.url_for("bulk_action", action=action),
            cancel_url=back,
            button=BULK_ACTIONS[action][0],
            question=f"{BULK_ACTIONS[action][0]}: {where.describe()}",
            row=None,
            count=count,
            fields=filter_fields(where),
        )
    run = Admin.retry_all if action == "retry" else Admin.delete_all
    report: BulkReport = await run_in_threadpool(run, parts.admin, where)
    query = dict(filter_fields(where))
    query.update(notice=BULK_ACTIONS[action][1], n=str(report.done),
                 skipped=str(len(report.skipped)))  # fmt: skip
    if report.broker_error is not None:
        query["broker"] = "down"
    parts.stats_cache.clear()
    target = request.url_for("jobs")
    return RedirectResponse(f"{target}?{urlencode(_nonempty(query))}", status_code=303)


def _job_call(action: str, job_id: int, fields: Mapping[str, str]) -> Callable[[Admin], Outcome]:
    """The admin call an action makes, with its form values checked first."""
    if action == "reschedule":
        at = parse_reschedule(fields.get("at", ""), fields.get("in_seconds", ""))
        return lambda admin: admin.reschedule(job_id, at)
    if action == "priority":
        priority = parse_priority(fields.get("priority", ""))
        return lambda admin: admin.change_priority(job_id, priority)
    calls: dict[str, Callable[[Admin], Outcome]] = {
        "retry": lambda admin: admin.retry(job_id),
        "delete": lambda admin: admin.delete(job_id),
        "run-now": lambda admin: admin.run_now(job_id),
    }
    return calls[action]


def _question(action: str, job_id: int, fields: Mapping[str, str]) -> str:
    if action == "reschedule":
        when = fields.get("at") or f"{fields.get('in_seconds')} s from now"
        return f"Reschedule job {job_id} to run at {when}?"
    if action == "priority":
        return f"Give job {job_id} priority {fields.get('priority')}?"
    return f"{JOB_ACTIONS[action][0]} job {job_id}?"


def _carried(fields: Mapping[str, str]) -> dict[str, str]:
    """The fields a confirmation page posts again (all but the token and the answer)."""
    return {k: v for k, v in fields.items() if k not in (CSRF_FIELD, "confirmed")}


def _nonempty(query: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in query.items() if v}
