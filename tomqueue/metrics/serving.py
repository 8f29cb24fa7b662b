"""The /metrics endpoint of a worker, a deferred manager, or a supervisor of workers.

A single process (``tomqueue-worker --metrics-port P`` alone, ``tomqueue-deferred
--metrics-port P``) records in its own registry and serves it. With ``--processes N`` the
supervisor serves: it makes a multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, unless
one is set already), every child records into it, and the supervisor's registry sums
them (prometheus_client's multiprocess mode). A child that ends is marked dead there; its
counts stay in the sums, so totals never go backwards when a child is replaced. The
directory the supervisor made is removed when it exits.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from tomqueue.errors import ConfigurationError
from tomqueue.metrics import DEFAULT_METRICS_HOST
from tomqueue.metrics.collector import JobGauges
from tomqueue.metrics.instruments import Instruments, MetricsObserver

if TYPE_CHECKING:
    from tomqueue.app import App
    from tomqueue.settings import Settings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_HOST = DEFAULT_METRICS_HOST


class Endpoint:
    """An HTTP server for ``registry`` on its own thread: /metrics in Prometheus text."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = DEFAULT_HOST) -> None:
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); is another "
                "process using that port? Choose another --metrics-port"
            ) from exc
        self.port = self._server.server_port
        log.info("serving Prometheus metrics at http://%s:%s/metrics", host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def record_metrics(app: App, registry: CollectorRegistry | None) -> Instruments:
    """Make ``app``'s job endings, crashes and releases feed new instruments."""
    instruments = Instruments(registry)
    app.observers.add(MetricsObserver(instruments))
    return instruments


def serve_process_metrics(app: App, port: int, host: str = DEFAULT_HOST) -> Endpoint:
    """One process's metrics and the SQL gauges, served on ``port``."""
    registry = CollectorRegistry()
    record_metrics(app, registry)
    registry.register(JobGauges(app.store.overview.gauges))
    return Endpoint(registry, port, host)


class SupervisorMetrics:
    """The supervisor's side of multiprocess mode: the directory, the endpoint, the
    dead children. Built before the children start, so they inherit the directory."""

    def __init__(self, app: App, port: int, host: str = DEFAULT_HOST) -> None:
        given = os.environ.get(MULTIPROC_ENV)
        self.path = given or tempfile.mkdtemp(prefix="tomqueue-metrics-")
        self._owned = not given
        os.environ[MULTIPROC_ENV] = self.path  # the children's environment
        self.app = app
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.path)  # type: ignore[no-untyped-call]
        registry.register(JobGauges(app.store.overview.gauges))
        try:
            self.endpoint = Endpoint(registry, port, host)
        except ConfigurationError:
            self._remove_directory()
            raise

    def child_ended(self, pid: int) -> None:
        """Forget a dead child's live values (its counts stay in the sums)."""
        try:
            mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]
        except OSError as exc:
            log.warning("metrics: could not clear worker pid %s's files (%s)", pid, exc)

    def close(self) -> None:
        self.endpoint.close()
        self.app.close()
        self._remove_directory()

    def _remove_directory(self) -> None:
        if self._owned:
            shutil.rmtree(self.path, ignore_errors=True)


def supervise_with_metrics(
    command: list[str],
    processes: int,
    shutdown_timeout: float,
    settings: Settings,
    port: int,
    host: str = DEFAULT_HOST,
) -> int:
    """Run ``processes`` children of ``command`` under a Supervisor, serving their metrics
    summed (and the SQL gauges) on ``port``; each child is told to record into the
    supervisor's multiprocess directory. Returns the supervisor's exit code."""
    from tomqueue.app import App
    from tomqueue.worker.supervisor import run_supervised

    metrics = SupervisorMetrics(App(settings, pool_size=1), port, host)
    try:
        command = [*command, "--metrics-multiprocess"]
        return run_supervised(command, processes, shutdown_timeout, metrics.child_ended)
    finally:
        metrics.close()
