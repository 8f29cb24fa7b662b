"""JobGauges: tomqueue_jobs{state,queue} and tomqueue_oldest_job_age_seconds{queue},
read from PostgreSQL when Prometheus scrapes, at most once per ``ttl`` seconds.

One statement (``statements.JOB_GAUGES``), each part of it driven by a partial index; its
answer is kept for ``ttl`` seconds and shared by every scrape meanwhile, so a scrape storm
(several Prometheus servers, a dashboard refreshing) costs the database one query per
``ttl``. If the database cannot answer, the scrape still serves the other metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tomqueue.metrics.instruments import label
from tomqueue.queues import DEFAULT_QUEUE, shown_queue

log = logging.getLogger(__name__)

STATES = ("queued", "scheduled", "running", "failed")
GaugeRows = list[tuple[str | None, str, int, datetime | None]]
GaugeRead = Callable[[], tuple[datetime | None, GaugeRows]]


class JobGauges(Collector):
    """A custom collector over ``read`` (``OverviewStore.gauges``), cached for ``ttl``."""

    def __init__(
        self, read: GaugeRead, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.read = read
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._cached: tuple[dict[str, dict[str, int]], dict[str, float]] | None = None

    def describe(self) -> Iterable[Metric]:
        # what the registry needs to know at register time, without asking the database
        return list(self._families({}, {}))

    def collect(self) -> Iterable[Metric]:
        values = self._values()
        if values is None:
            return []
        return list(self._families(*values))

    def _values(self) -> tuple[dict[str, dict[str, int]], dict[str, float]] | None:
        with self._lock:  # concurrent scrapes wait for the one query, then share it
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.ttl:
                return self._cached
            try:
                db_now, rows = self.read()
            except Exception as exc:  # a scrape must not fail because PostgreSQL is away
                log.warning(
                    "metrics: could not read the job counts (%s: %s)", type(exc).__name__, exc
                )
                self._cached = None
            else:
                self._cached = _tally(db_now, rows)
            self._read_at = now
            return self._cached

    def _families(
        self, counts: dict[str, dict[str, int]], ages: dict[str, float]
    ) -> Iterable[Metric]:
        jobs = GaugeMetricFamily(
            "tomqueue_jobs",
            "Jobs in the table by state (queued: due and waiting for a worker; scheduled: "
            "run_at in the future, retries included; running: locked by a worker; failed: "
            "failed for good) and queue, read from PostgreSQL at scrape time.",
            labels=["state", "queue"],
        )
        oldest = GaugeMetricFamily(
            "tomqueue_oldest_job_age_seconds",
            "How long the longest-waiting queued job has been due, by queue (0: none).",
            labels=["queue"],
        )
        for queue in sorted(counts):
            for state in STATES:
                jobs.add_metric([state, queue], counts[queue].get(state, 0))
            oldest.add_metric([queue], ages.get(queue, 0.0))
        yield jobs
        yield oldest


def _tally(
    db_now: datetime | None, rows: GaugeRows
) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    counts: dict[str, dict[str, int]] = {DEFAULT_QUEUE: {}}  # always there, even if empty
    ages: dict[str, float] = {}
    for stored_queue, state, n, oldest_run_at in rows:
        queue = label(shown_queue(stored_queue))
        by_state = counts.setdefault(queue, {})
        by_state[state] = by_state.get(state, 0) + n
        if oldest_run_at is not None and db_now is not None:
            age = max(0.0, (db_now - oldest_run_at).total_seconds())
            ages[queue] = max(ages.get(queue, 0.0), age)
    return counts, ages
