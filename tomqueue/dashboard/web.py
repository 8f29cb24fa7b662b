"""The dashboard's ASGI app: routes, the access gate, and the answers to failures.

``create_app()`` returns a Starlette app that ``tomqueue dashboard`` serves with uvicorn
and that a user can mount under a path of their own site (Starlette ``Mount``, FastAPI
``app.mount``, Django through its ASGI router). Every page is rendered on the server;
there is no JavaScript at all, so the pages need no build step and no script source.

The gate (``Gatekeeper``) runs before any route: it decides who may ask (see
``tomqueue.dashboard.security``), gives each browser its CSRF nonce cookie, and adds the
headers that keep the pages from being framed, sniffed or made to load outside content.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tomqueue.admin import Admin
from tomqueue.dashboard import actions, pages
from tomqueue.dashboard.context import HERE, Dashboard, FormRejected, checked_form, dashboard_of
from tomqueue.dashboard.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    Guard,
    safe_next,
)
from tomqueue.errors import DatabaseUnavailableError

TOKEN_ENV = "TOMQUEUE_DASHBOARD_TOKEN"  # noqa: S105 - the variable's name, not a secret
PUBLIC_PATHS = ("/login", "/static/")  # served before logging in
FAILED_LOGIN_DELAY = 0.5  # seconds: slows a guesser without bothering a person
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(
    admin: Admin | Callable[[], Admin] | None = None,
    *,
    token: str | None = None,
    trusted_hosts: Iterable[str] = (),
    stats_cache_seconds: float = 5.0,
) -> Starlette:
    """The dashboard as an ASGI app.

    ``admin``: the admin service to use, or a function building it (default: over the
    process's default App, built on the first request). ``token``: required on every
    request when set (default: ``TOMQUEUE_DASHBOARD_TOKEN``; at least 16 characters);
    without one only loopback clients are served. ``trusted_hosts``: Host names besides
    localhost that a tokenless dashboard answers to (e.g. behind a local proxy).
    ``stats_cache_seconds``: how long the overview counts are reused.
    """
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    factory: Callable[[], Admin]
    if admin is None:
        factory = Admin
    elif isinstance(admin, Admin):
        given = admin
        factory = lambda: given  # noqa: E731 - a one-line factory
    else:
        factory = admin
    guard = Guard(token, frozenset(host.lower() for host in trusted_hosts))
    app = Starlette(
        routes=_routes(),
        middleware=[Middleware(Gatekeeper)],
        exception_handlers={
            FormRejected: _form_rejected,
            DBAPIError: _database_down,
            DatabaseUnavailableError: _database_down,
        },
    )
    app.state.dashboard = Dashboard(factory, guard, stats_cache_seconds)
    return app


def _routes() -> list[Route | Mount]:
    return [
        Route("/", pages.overview, name="overview"),
        Route("/jobs", pages.jobs, name="jobs"),
        Route("/jobs/{job_id:int}", pages.job, name="job"),
        Route(
            "/jobs/{job_id:int}/{action}", actions.job_action, name="job_action", methods=["POST"]
        ),
        Route("/bulk/{action}", actions.bulk_action, name="bulk_action", methods=["POST"]),
        Route("/workers", pages.workers, name="workers"),
        Route("/queues", pages.queues, name="queues"),
        Route("/api/jobs/{job_id:int}", pages.api_job, name="api_job"),
        Route("/api/stats", pages.api_stats, name="api_stats"),
        Route("/login", login_page, name="login", methods=["GET"]),
        Route("/login", login, name="login_post", methods=["POST"]),
        Route("/logout", logout, name="logout", methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


class Gatekeeper(BaseHTTPMiddleware):
    """Who may ask, the CSRF nonce cookie, and the security headers, for every request."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        guard = dashboard_of(request).guard
        path = _own_path(request)
        nonce = request.cookies.get(CSRF_COOKIE)
        fresh_nonce = None if nonce else guard.new_nonce()
        request.state.csrf_nonce = nonce or fresh_nonce
        request.state.bearer = guard.bearer_ok(request.headers.get("authorization"))
        refusal = None if path.startswith(PUBLIC_PATHS) else _refusal(request, guard, path)
        response = refusal or await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if fresh_nonce is not None:
            response.set_cookie(
                CSRF_COOKIE, fresh_nonce, httponly=True, samesite="strict",
                secure=request.url.scheme == "https", path=_cookie_path(request),
            )  # fmt: skip
        return response


def _refusal(request: Request, guard: Guard, path: str) -> Response | None:
    """The answer to a request that may not be served (None: serve it)."""
    if not guard.needs_login:
        client = request.client.host if request.client else None
        if guard.local_request_ok(client, request.headers.get("host")):
            return None
        return PlainTextResponse(
            "This dashboard has no token, so it serves only this machine (a loopback "
            "client naming localhost). Set TOMQUEUE_DASHBOARD_TOKEN to open it further.",
            status_code=403,
        )
    if request.state.bearer or guard.session_ok(request.cookies.get(SESSION_COOKIE)):
        return None
    if path.startswith("/api/") or request.method != "GET":
        return JSONResponse(
            {"error": "a token is required (Authorization: Bearer <token>)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login_url = request.url_for("login")
    return RedirectResponse(f"{login_url}?{urlencode({'next': wanted})}", status_code=303)


async def login_page(request: Request) -> Response:
    parts = dashboard_of(request)
    if not parts.guard.needs_login:
        return RedirectResponse(request.url_for("overview"), status_code=303)
    return parts.page(
        request, "login.html", next=request.query_params.get("next", ""), failed=False
    )


async def login(request: Request) -> Response:
    parts = dashboard_of(request)
    fields = await checked_form(request)
    home = str(request.url_for("overview"))
    if not parts.guard.token_matches(fields.get("token", "")):
        await asyncio.sleep(FAILED_LOGIN_DELAY)
        return parts.page(request, "login.html", 401, next=fields.get("next", ""), failed=True)
    target = safe_next(fields.get("next"), home)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, parts.guard.new_session(), max_age=SESSION_MAX_AGE, httponly=True,
        samesite="strict", secure=request.url.scheme == "https", path=_cookie_path(request),
    )  # fmt: skip
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    response = RedirectResponse(request.url_for("login"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
    return response


async def _form_rejected(request: Request, _: Exception) -> Response:
    return dashboard_of(request).page(
        request,
        "error.html",
        403,
        title="Form refused",
        message="This form did not carry this browser's security token (it may be from an "
        "old page or from another site). Nothing was changed: reload the page and try again.",
    )


async def _database_down(request: Request, exc: Exception) -> Response:
    text = (
        f"PostgreSQL is unreachable or refused the request ({type(exc).__name__}). "
        "Is it running, and has `tomqueue migrate` been run?"
    )
    if _own_path(request).startswith("/api/"):
        return JSONResponse({"error": text}, status_code=503)
    return dashboard_of(request).page(
        request, "error.html", 503, title="Database unavailable", message=text
    )


def _own_path(request: Request) -> str:
    """The request's path inside the dashboard, wherever the dashboard is mounted."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] or "/" if root and path.startswith(root) else path


def _cookie_path(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root or "/"
