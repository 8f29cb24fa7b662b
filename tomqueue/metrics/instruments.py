"""The metrics a process records, and the observer that records them from job endings."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from tomqueue.observers import Ending, JobEnded, Observer
from tomqueue.queues import shown_queue
from tomqueue.snapshot import JobSnapshot

# a class name comes from a row's handler, which is data: bounded, so a hostile row
# cannot blow up a label value
MAX_LABEL_CHARS = 200

DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
LATENESS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip


def label(text: str) -> str:
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 3] + "..."


class Instruments:
    """The counters and histograms, registered in ``registry`` (None: in no registry, as
    in a supervised child, whose values go to the multiprocess directory)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.completed = Counter(
            "tomqueue_jobs_completed",
            "Attempts of jobs that ended, by class, queue and outcome: succeeded, failed "
            "(for good), retried, timeout (overran max_run_time), crashed (its worker died; "
            "counted by the process whose sweep took the job back).",
            ["class", "queue", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "tomqueue_job_duration_seconds",
            "How long attempts ran (hooks included), by job class.",
            ["class"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.lateness = Histogram(
            "tomqueue_release_lateness_seconds",
            "How long after its run_at the deferred manager released a job, by queue.",
            ["queue"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )


class MetricsObserver(Observer):
    """Records every attempt's end, every crash the sweep recovers and every release."""

    def __init__(self, instruments: Instruments) -> None:
        self.instruments = instruments

    def job_ended(self, event: JobEnded) -> None:
        job_class = label(event.job_class)
        self.instruments.completed.labels(job_class, label(event.queue), event.ending.value).inc()
        if event.duration is not None:
            self.instruments.duration.labels(job_class).observe(event.duration)

    def job_crashed(self, row: JobSnapshot) -> None:
        self.instruments.completed.labels(
            label(row.class_name), label(shown_queue(row.queue)), Ending.CRASHED.value
        ).inc()

    def job_released(self, job_id: int, queue: str, lateness: float) -> None:
        self.instruments.lateness.labels(label(queue)).observe(max(0.0, lateness))
