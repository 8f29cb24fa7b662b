"""The worker and deferred processes with Django set up (the management commands).

Both configure tomqueue from the backend's OPTIONS (``config.py``) and then run
tomqueue's own worker or deferred manager. The worker also:

- registers the tasks it may run (``registry.discover()``: each installed app's ``tasks``
  module and ``OPTIONS["MODULES"]``) before it takes a job;
- wraps every job in ``DjangoJob``, on the job's own thread: Django's
  ``close_old_connections()`` before and after it, as Django does around a request (so
  ``CONN_MAX_AGE`` and ``CONN_HEALTH_CHECKS`` mean what they mean in a web process), and
  before it a zero-cost look at each open connection's socket: one the server has closed
  (a database restart, ``pg_terminate_backend``) is dropped, so the job opens a fresh one
  instead of failing on a stale one;
- with ``--processes N``, runs N children, each ``python -m django tomqueue_worker`` with
  the same settings module and ``sys.path``, so each sets Django up itself.

``tomqueue-worker --app tomqueue.contrib.django.worker`` (with DJANGO_SETTINGS_MODULE
set) is the same worker without manage.py: ``tomqueue_setup`` does the Django part.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tomqueue.app import App
from tomqueue.contrib.django.job import RunInfo, current_run, worker_id
from tomqueue.contrib.django.registry import registry
from tomqueue.default_app import configure, current_settings, default_app, install_default_app
from tomqueue.logs import configure_process_logging
from tomqueue.metrics import DEFAULT_METRICS_HOST, process_metrics

if TYPE_CHECKING:
    from tomqueue.worker.context import WorkContext
    from tomqueue.worker.outcome import Outcome
    from tomqueue.worker.stack import WorkerStack


class DjangoJob:
    """Worker-stack layer (just outside Invoke, on the job's thread): Django's connection
    hygiene around each job, and the row's facts for the task's TaskContext."""

    def __call__(self, ctx: WorkContext, call_next: Callable[[WorkContext], Outcome]) -> Outcome:
        from django.db import close_old_connections

        drop_closed_connections()
        close_old_connections()
        row = ctx.lock.row
        info = None
        if row is not None:
            info = RunInfo(
                job_id=row.id,
                attempts=row.attempts,
                enqueued_at=row.created_at,
                started_at=row.locked_at,
                worker_id=worker_id(),
            )
        token = current_run.set(info)
        try:
            return call_next(ctx)
        finally:
            current_run.reset(token)
            close_old_connections()


def drop_closed_connections() -> None:
    """Close every Django connection of this thread whose server has hung up on it.

    An idle PostgreSQL connection has nothing to read unless the server said goodbye
    (it sends a FATAL error, then closes), so a zero-wait poll of its socket finds a dead
    one with no round trip. Django then reconnects on first use."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        raw = connection.connection
        if raw is None or connection.in_atomic_block:
            continue
        if _closed_by_server(raw):
            connection.close()


def _closed_by_server(raw: Any) -> bool:
    pgconn = getattr(raw, "pgconn", None)  # psycopg 3
    try:
        if getattr(raw, "closed", False):
            return True
        fd = pgconn.socket if pgconn is not None else raw.fileno()  # psycopg2: fileno()
        readable, _, _ = select.select([fd], [], [], 0)
    except Exception:
        return True
    return bool(readable)


def add_django_layer(stack: WorkerStack) -> None:
    from tomqueue.worker.layers import Invoke

    stack.insert_before(Invoke, DjangoJob())


def backend_for(alias: str) -> Any:
    """The TomQueueBackend named ``alias`` in TASKS, or a clear error."""
    from tomqueue.contrib.django import compat
    from tomqueue.contrib.django.backend import TomQueueBackend

    try:
        backend = compat.task_backends[alias]
    except Exception as exc:
        raise LookupError(f"no task backend {alias!r} in TASKS ({exc})") from exc
    if not isinstance(backend, TomQueueBackend):
        raise LookupError(
            f"TASKS[{alias!r}] is {type(backend).__module__}.{type(backend).__qualname__}, "
            "not tomqueue.contrib.django.TomQueueBackend"
        )
    return backend


def configure_from_django(alias: str = "default", queues: str | None = None) -> Any:
    """Configure tomqueue from TASKS[alias]; returns the backend."""
    backend = backend_for(alias)
    changes = backend.tomqueue_changes()
    if queues is not None:
        changes["queues"] = queues
    configure(**changes)
    return backend


def tomqueue_setup(app: App) -> None:
    """``tomqueue-worker --app tomqueue.contrib.django.worker``: Django set up, the tasks
    registered, and the connection layer in the stack."""
    import django

    django.setup()
    backend = backend_for(os.environ.get("TOMQUEUE_DJANGO_BACKEND", "default"))
    registry.discover(backend.worker_modules())
    app.edit_worker_stack(add_django_layer)


def run_worker(
    alias: str = "default",
    concurrency: int = 1,
    queues: str | None = None,
    processes: int = 1,
    max_jobs: int | None = None,
    shutdown_timeout: float | None = None,
    log_level: str = "INFO",
    metrics_port: int | None = None,
    metrics_host: str = DEFAULT_METRICS_HOST,
    metrics_multiprocess: bool = False,
) -> int:
    """``manage.py tomqueue_worker``: returns the exit code. With ``metrics_port``, serves
    Prometheus metrics as ``tomqueue-worker --metrics-port`` does (the supervisor serves
    its children's, summed, with ``processes`` above 1)."""
    from tomqueue.worker.supervisor import DEFAULT_SHUTDOWN_TIMEOUT

    configure_process_logging(log_level)
    backend = configure_from_django(alias, queues)
    modules = registry.discover(backend.worker_modules())
    if processes > 1:
        command = child_command(alias, concurrency, queues, max_jobs, log_level)
        timeout = DEFAULT_SHUTDOWN_TIMEOUT if shutdown_timeout is None else shutdown_timeout
        return _supervise(command, processes, timeout, metrics_port, metrics_host)
    import logging

    logging.getLogger(__name__).info(
        "Django tasks registered from %s: %s",
        ", ".join(modules) or "no module",
        ", ".join(registry.paths()) or "none",
    )
    app = App(current_settings(), pool_size=concurrency + 4)
    install_default_app(app)  # tasks that enqueue share this app's connections
    app.edit_worker_stack(add_django_layer)
    endpoint = process_metrics(app, metrics_port, metrics_host, metrics_multiprocess)
    worker = app.worker(concurrency=concurrency, max_jobs=max_jobs)
    worker.install_signal_handlers()
    try:
        return worker.run()
    finally:
        if endpoint is not None:
            endpoint.close()


def _supervise(
    command: list[str],
    processes: int,
    shutdown_timeout: float,
    metrics_port: int | None,
    metrics_host: str,
) -> int:
    if metrics_port is None:
        from tomqueue.worker.supervisor import run_supervised

        return run_supervised(command, processes, shutdown_timeout)
    from tomqueue.metrics.serving import supervise_with_metrics

    settings = current_settings()
    return supervise_with_metrics(
        command, processes, shutdown_timeout, settings, metrics_port, metrics_host
    )


def child_command(
    alias: str, concurrency: int, queues: str | None, max_jobs: int | None, log_level: str
) -> list[str]:
    """One supervised child: this command again, in one process, with Django set up from
    the same settings module and the same import path (``python -m django``)."""
    from django.conf import settings

    os.environ["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE
    path = [entry or os.getcwd() for entry in sys.path]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    argv = [sys.executable, "-m", "django", "tomqueue_worker", "--backend", alias]
    argv += ["--concurrency", str(concurrency), "--log-level", log_level]
    if queues is not None:
        argv += ["--queues", queues]
    if max_jobs is not None:
        argv += ["--max-jobs", str(max_jobs)]
    return argv


def run_deferred(
    alias: str = "default",
    horizon: float | None = None,
    log_level: str = "INFO",
    metrics_port: int | None = None,
    metrics_host: str = DEFAULT_METRICS_HOST,
) -> int:
    """``manage.py tomqueue_deferred``: returns the exit code."""
    configure_process_logging(log_level)
    configure_from_django(alias)
    if horizon:
        configure(deferred_horizon=horizon)
    app = default_app()
    endpoint = process_metrics(app, metrics_port, metrics_host)
    manager = app.deferred_manager()
    manager.install_signal_handlers()
    try:
        return manager.run()
    finally:
        if endpoint is not None:
            endpoint.close()
