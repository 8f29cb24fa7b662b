"""Prometheus metrics for tomqueue-worker and tomqueue-deferred (``--metrics-port``).

- ``instruments``: the counters and histograms a process records, and the observer that
  feeds them from how jobs end (tomqueue.observers);
- ``collector``: the SQL gauges (jobs by state and queue, the oldest waiting job's age),
  read at scrape time and cached briefly;
- ``serving``: the /metrics endpoint of one process, or of a supervisor whose children
  write to a multiprocess directory (``--processes``).

An adapter on the edge: tomqueue's core never imports this package, and importing the
package itself (for this constant and ``process_metrics``) loads no prometheus_client
until a process asks for metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tomqueue.app import App
    from tomqueue.metrics.serving import Endpoint

# where --metrics-port listens unless --metrics-host says otherwise
DEFAULT_METRICS_HOST = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another host


def process_metrics(
    app: App, port: int | None, host: str = DEFAULT_METRICS_HOST, multiprocess: bool = False
) -> Endpoint | None:
    """What one worker or deferred process does with ``--metrics-port`` (serve its own
    metrics on ``port``) or ``--metrics-multiprocess`` (a supervised child: record into
    the supervisor's directory, serve nothing). The endpoint to close at exit, if any."""
    if multiprocess:
        from tomqueue.metrics.serving import record_metrics

        record_metrics(app, registry=None)
        return None
    if port is None:
        return None
    from tomqueue.metrics.serving import serve_process_metrics

    return serve_process_metrics(app, port, host)
