"""The dashboard's per-app parts: the admin service, the guard, the templates and the
short cache of overview counts, held by the Starlette app (``app.state.dashboard``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from tomqueue.admin import Admin
from tomqueue.dashboard import formatting
from tomqueue.dashboard.security import CSRF_FIELD, Guard

T = TypeVar("T")
HERE = Path(__file__).resolve().parent


class TimedCache(Generic[T]):
    """One value, recomputed at most every ``seconds``: the overview counts scan the
    table, so a page refreshed by many people asks the database once per interval."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: tuple[float, T] | None = None

    def get(self, compute: Callable[[], T]) -> T:
        with self._lock:
            now = time.monotonic()
            if self._value is not None and now - self._value[0] < self.seconds:
                return self._value[1]
            value = compute()
            self._value = (now, value)
            return value

    def clear(self) -> None:
        """Forget the value: an action changed the counts, the next page shows it."""
        with self._lock:
            self._value = None


@dataclass
class Dashboard:
    """What every view needs."""

    admin_factory: Callable[[], Admin]
    guard: Guard
    stats_cache_seconds: float = 5.0
    templates: Jinja2Templates = field(init=False)
    _admin: Admin | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every page escapes job data: a handler cannot inject markup
            undefined=jinja2.StrictUndefined,
        )
        env.filters.update(
            when=formatting.when,
            duration=formatting.duration,
            short_class=formatting.short_class,
        )
        env.globals.update(relative=formatting.relative, csrf_field=CSRF_FIELD)
        self.templates = Jinja2Templates(env=env)
        self.stats_cache: TimedCache[Any] = TimedCache(self.stats_cache_seconds)

    @property
    def admin(self) -> Admin:
        """The admin service, built on first use (the default App needs the settings)."""
        with self._lock:
            if self._admin is None:
                self._admin = self.admin_factory()
            return self._admin

    def page(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        nonce: str = request.state.csrf_nonce
        values.setdefault("notice", None)
        values.update(
            request=request,
            csrf_token=self.guard.form_token(nonce),
            logged_in=self.guard.needs_login,
        )
        return self.templates.TemplateResponse(request, template, values, status_code=status_code)


def dashboard_of(request: Request) -> Dashboard:
    parts: Dashboard = request.app.state.dashboard
    return parts


class FormRejected(Exception):
    """A POST without this browser's CSRF token: answered 403, nothing done."""


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form's text fields, once its CSRF token matches the browser's nonce
    cookie (a bearer-token request needs none: a browser never adds that header)."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if request.state.bearer:
        return fields
    guard = dashboard_of(request).guard
    if not guard.form_ok(request.state.csrf_nonce, fields.get(CSRF_FIELD)):
        raise FormRejected()
    return fields
