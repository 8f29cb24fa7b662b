"""Prometheus metrics for tomqueue-worker and tomqueue-deferred (``--metrics-port``).

- ``instruments``: the counters and histograms a process records, and the observer that
  feeds them from how jobs end (tomqueue.observers);
- ``collector``: the SQL gauges (jobs by state and queue, the oldest waiting job's age),
  read at scrape time and cached briefly;
- ``serving``: the /metrics endpoint of one process, or of a supervisor whose children
  write to a multiprocess directory (``--processes``).

An adapter on the edge: tomqueue's core never imports this package, and importing the
package itself (for this constant) loads no prometheus_client.
"""

# where --metrics-port listens unless --metrics-host says otherwise
DEFAULT_METRICS_HOST = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another host
