"""Observers, exception reports, JSON log lines and the metrics' pure parts, with no servers."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from prometheus_client import CollectorRegistry

from tests.unit.test_layers_worker import (
    SETTINGS,
    FakeLease,
    FakeSource,
    Recorded,
    add,
    fresh_context,
    message,
)
from tomqueue.app import App
from tomqueue.errors import ConfigurationError, JobRefusedError, JobTimeout
from tomqueue.exception_reports import ExceptionReports, resolve_reporter
from tomqueue.fakes import InMemoryJobStore, RecordingPublisher
from tomqueue.logs import JsonFormatter, scrub
from tomqueue.metrics.collector import JobGauges
from tomqueue.metrics.instruments import Instruments, MetricsObserver, label
from tomqueue.observers import Ending, JobEnded, Observer, Observers
from tomqueue.settings import Settings, log_format_from_env, settings_from_env
from tomqueue.snapshot import JobSnapshot
from tomqueue.worker.context import WorkContext
from tomqueue.worker.layers import perform
from tomqueue.worker.observe import job_ended
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.stack import StackParts

# -- settings ------------------------------------------------------------------------------


def reporter(exc: BaseException, **kwargs: object) -> None:
    """A module-level reporter, for "module:function" resolution."""


@pytest.mark.parametrize("bad", [42, "no_colon", "a b:c", ":fn", "module:"])
def test_an_exception_reporter_must_be_a_callable_or_module_function_text(bad):
    with pytest.raises(ConfigurationError, match="exception_reporter"):
        Settings(exception_reporter=bad)


def test_the_reporter_settings_come_from_the_environment():
    settings = settings_from_env(
        {
            "TOMQUEUE_EXCEPTION_REPORTER": "tests.unit.test_observability:reporter",
            "TOMQUEUE_REPORT_EVERY_ATTEMPT": "yes",
        }
    )
    assert settings.report_every_attempt is True
    assert resolve_reporter(settings.exception_reporter) is reporter
    assert settings_from_env({}).exception_reporter is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.no_such_module:fn", "cannot be loaded"),
        ("tests.unit.test_observability:missing", "cannot be loaded"),
        ("tests.unit.test_observability:SETTINGS", "is not callable"),
    ],
)
def test_a_reporter_that_cannot_be_resolved_is_refused_by_name(spec, message):
    with pytest.raises(ConfigurationError, match=message):
        resolve_reporter(spec)


@pytest.mark.parametrize(
    ("given", "expected"), [(None, "text"), ("json", "json"), (" JSON ", "json"), ("", "text")]
)
def test_the_log_format_comes_from_the_environment(given, expected):
    env = {} if given is None else {"TOMQUEUE_LOG_FORMAT": given}
    assert log_format_from_env(env) == expected


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ConfigurationError, match="TOMQUEUE_LOG_FORMAT must be one of"):
        log_format_from_env({"TOMQUEUE_LOG_FORMAT": "yaml"})


# -- how an attempt's end is told ---------------------------------------------------------


def locked_context(store: InMemoryJobStore, job: Recorded, attempts: int = 0) -> WorkContext:
    """A context as LockJob leaves it for a row with ``attempts`` failed runs."""
    from tomqueue.admission import Admission
    from tomqueue.store.values import LockResult

    row = add(store, job)
    row = JobSnapshot(**{**row.__dict__, "attempts": attempts})
    ctx = fresh_context()
    ctx.lock = LockResult(Admission.RUN, row, row.run_at)
    ctx.job = job
    ctx.locked_monotonic = 100.0
    return ctx


@pytest.mark.parametrize(
    ("outcome", "timed_out", "ending", "for_good", "attempts", "ran"),
    [
        (Outcome.SUCCEEDED, False, Ending.SUCCEEDED, False, 1, True),
        (Outcome.RETRY_SCHEDULED, False, Ending.RETRIED, False, 2, True),
        (Outcome.RETRY_SCHEDULED, True, Ending.TIMEOUT, False, 2, True),
        (Outcome.FAILED, False, Ending.FAILED, True, 2, True),
        (Outcome.FAILED, True, Ending.TIMEOUT, True, 2, True),
        (Outcome.REFUSED, False, Ending.FAILED, True, 1, False),
    ],
)
def test_each_outcome_that_ends_an_attempt_has_one_ending(
    outcome, timed_out, ending, for_good, attempts, ran
):
    ctx = locked_context(InMemoryJobStore(), Recorded("x"), attempts=1)
    ctx.timed_out = timed_out
    ctx.error = None if outcome is Outcome.SUCCEEDED else ValueError("boom")
    event = job_ended(ctx, outcome, now=102.5)
    assert event is not None
    assert (event.ending, event.failed_for_good, event.attempts, event.ran) == (
        ending,
        for_good,
        attempts,
        ran,
    )
    assert event.attempt == 2 and event.queue == "default" and event.worker == "w1"
    assert event.job_class == Recorded.class_name()
    assert event.duration == (2.5 if ran else None)
    assert (event.error is None) == (outcome is Outcome.SUCCEEDED)


@pytest.mark.parametrize(
    "outcome",
    [Outcome.IDLE, Outcome.DROPPED, Outcome.DEFERRED, Outcome.ERRORED, Outcome.STUCK],
)
def test_turns_that_end_no_attempt_are_not_told(outcome):
    ctx = locked_context(InMemoryJobStore(), Recorded("x"))
    assert job_ended(ctx, outcome, now=101.0) is None
    assert job_ended(fresh_context(), outcome, now=101.0) is None


def event(ending: Ending, for_good: bool, error: BaseException | None = None) -> JobEnded:
    return JobEnded(
        job_id=7,
        job_class="app.Job",
        queue="default",
        attempts=3,
        attempt=3,
        ending=ending,
        failed_for_good=for_good,
        ran=True,
        duration=0.1,
        worker="w",
        error=error,
    )


@pytest.mark.parametrize(
    ("every", "ending", "for_good", "reported"),
    [
        (False, Ending.SUCCEEDED, False, False),
        (False, Ending.RETRIED, False, False),
        (False, Ending.TIMEOUT, False, False),
        (False, Ending.FAILED, True, True),
        (False, Ending.TIMEOUT, True, True),
        (True, Ending.RETRIED, False, True),
        (True, Ending.TIMEOUT, False, True),
        (True, Ending.SUCCEEDED, False, False),
    ],
)
def test_failures_are_reported_for_good_only_unless_every_attempt(
    every, ending, for_good, reported
):
    calls = []
    reports = ExceptionReports(lambda exc, **kw: calls.append((exc, kw)), every_attempt=every)
    error = ValueError("boom")
    reports.job_ended(event(ending, for_good, None if ending is Ending.SUCCEEDED else error))
    expected = [(error, {"job_id": 7, "job_class": "app.Job", "attempts": 3})]
    assert calls == (expected if reported else [])


def test_a_reporter_that_raises_is_logged_and_ignored(caplog):
    def broken(exc, **kwargs):
        raise RuntimeError("reporter down")

    with caplog.at_level(logging.ERROR):
        ExceptionReports(broken).job_ended(event(Ending.FAILED, True, ValueError("x")))
    assert "the exception reporter raised while reporting job 7" in caplog.text


def test_an_observer_that_raises_does_not_stop_the_others(caplog):
    seen = []

    class Broken(Observer):
        def job_ended(self, event):
            raise RuntimeError("observer down")

    class Watching(Observer):
        def job_ended(self, event):
            seen.append(event.job_id)

    observers = Observers()
    observers.add(Broken())
    observers.add(Watching())
    with caplog.at_level(logging.ERROR):
        observers.job_ended(event(Ending.SUCCEEDED, False))
    assert seen == [7] and "observer Broken.job_ended raised" in caplog.text


class FailsAtOnce(Recorded):
    max_attempts = 1


def app_reporting_to(calls: list, **settings: object) -> tuple[App, InMemoryJobStore]:
    """An App over the fakes whose exception reporter appends to ``calls``."""
    app = App(
        SETTINGS.replace(exception_reporter=lambda exc, **kw: calls.append((exc, kw)), **settings)
    )
    store = InMemoryJobStore()
    app.__dict__.update(
        store=type("Stores", (), {"worker": store, "gates": store})(),
        publisher=RecordingPublisher(),
    )
    return app, store


def run_once(app: App, row: JobSnapshot) -> Outcome:
    stack = app.build_worker_stack(
        StackParts(
            runtime=app,
            source=FakeSource(message(row)),
            should_stop=lambda: False,
            lease=FakeLease(),
        )
    )
    return stack.invoke(fresh_context(), perform)


@pytest.mark.parametrize("every", [False, True])
def test_the_default_stack_reports_a_job_that_fails_for_good_with_its_kwargs(every):
    calls: list = []
    app, store = app_reporting_to(calls, report_every_attempt=every)
    row = add(store, FailsAtOnce("bad", fail=True))
    assert run_once(app, row) is Outcome.FAILED
    [(exc, kwargs)] = calls
    assert isinstance(exc, RuntimeError) and "failed on purpose" in str(exc)
    assert kwargs == {"job_id": row.id, "job_class": FailsAtOnce.class_name(), "attempts": 1}


def test_a_retried_attempt_is_reported_only_with_report_every_attempt():
    quiet: list = []
    app, store = app_reporting_to(quiet)
    assert run_once(app, add(store, Recorded("retried", fail=True))) is Outcome.RETRY_SCHEDULED
    assert quiet == []
    loud: list = []
    app, store = app_reporting_to(loud, report_every_attempt=True)
    row = add(store, Recorded("retried", fail=True))
    assert run_once(app, row) is Outcome.RETRY_SCHEDULED
    assert [kw for _, kw in loud] == [
        {"job_id": row.id, "job_class": Recorded.class_name(), "attempts": 1}
    ]


def test_a_refused_job_is_reported_with_a_job_refused_error():
    calls: list = []
    app, store = app_reporting_to(calls)
    from tomqueue.store.values import NewJob

    [row] = store.insert_committed([NewJob('{"class": "no.Such", "state": {}}', 0, None, None)])
    assert run_once(app, row) is Outcome.REFUSED
    [(exc, kwargs)] = calls
    assert isinstance(exc, JobRefusedError) and "no.Such" in str(exc)
    assert kwargs == {"job_id": row.id, "job_class": "no.Such", "attempts": 0}


# -- JSON log lines ------------------------------------------------------------------------


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("connect to postgresql://app:s3cret@db:5432/app failed")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("tomqueue.x", logging.INFO, __file__, 1, message, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_is_one_object_with_the_job_fields():
    line = JsonFormatter().format(
        record(
            "job %s done\nsecond line",
            5,
            job_id=5,
            job_class="app.Job",
            attempt=1,
            worker="h pid:1",
            duration=0.25,
            queue="default",
            outcome="succeeded",
        )
    )
    assert "\n" not in line
    document = json.loads(line)
    assert document["message"] == "job 5 done\nsecond line"
    assert {k: document[k] for k in ("job_id", "job_class", "attempt", "worker", "duration")} == {
        "job_id": 5,
        "job_class": "app.Job",
        "attempt": 1,
        "worker": "h pid:1",
        "duration": 0.25,
    }
    assert document["level"] == "INFO" and document["logger"] == "tomqueue.x"
    assert document["time"].endswith("+00:00")


def test_a_json_line_masks_credentials_in_the_message_and_the_traceback():
    line = JsonFormatter().format(record("broker amqp://guest:hunter2@mq:5672/%2F down", exc=True))
    assert "hunter2" not in line and "s3cret" not in line
    document = json.loads(line)
    assert "amqp://guest:***@mq:5672/%2F" in document["message"]
    assert "postgresql://app:***@db:5432/app" in document["exc"]
    assert "job_id" not in document  # only the fields a line has


def test_scrub_leaves_urls_without_credentials_alone():
    assert scrub("see http://example.com/a?b=c now") == "see http://example.com/a?b=c now"


# -- metrics -------------------------------------------------------------------------------


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_metrics_observer_counts_endings_durations_crashes_and_releases():
    registry = CollectorRegistry()
    observer = MetricsObserver(Instruments(registry))
    observer.job_ended(event(Ending.SUCCEEDED, False))
    observer.job_ended(event(Ending.TIMEOUT, True, JobTimeout("late")))
    store = InMemoryJobStore()
    observer.job_crashed(add(store, Recorded("gone")))
    observer.job_released(1, "billing", 0.2)
    observer.job_released(2, "billing", -0.01)  # the clocks' noise: never negative
    completed = "tomqueue_jobs_completed_total"
    assert (
        sample(
            registry, completed, **{"class": "app.Job", "queue": "default", "outcome": "succeeded"}
        )
        == 1
    )
    assert (
        sample(
            registry, completed, **{"class": "app.Job", "queue": "default", "outcome": "timeout"}
        )
        == 1
    )
    crashed = {"class": Recorded.class_name(), "queue": "default", "outcome": "crashed"}
    assert sample(registry, completed, **crashed) == 1
    assert sample(registry, "tomqueue_job_duration_seconds_count", **{"class": "app.Job"}) == 2
    assert sample(registry, "tomqueue_release_lateness_seconds_count", queue="billing") == 2
    assert sample(registry, "tomqueue_release_lateness_seconds_sum", queue="billing") == 0.2


def test_a_label_from_row_data_is_bounded():
    assert len(label("x" * 1000)) == 200 and label("short") == "short"


def test_job_gauges_are_cached_for_their_ttl_and_list_every_state():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    reads = []
    clock = [0.0]

    def read():
        reads.append(clock[0])
        return now, [
            (None, "failed", 2, None),
            ("billing", "queued", 4, now - timedelta(seconds=30)),
        ]

    gauges = JobGauges(read, ttl=2.0, clock=lambda: clock[0])
    registry = CollectorRegistry()
    registry.register(gauges)
    assert sample(registry, "tomqueue_jobs", state="failed", queue="default") == 2
    assert sample(registry, "tomqueue_jobs", state="queued", queue="default") == 0
    assert sample(registry, "tomqueue_jobs", state="queued", queue="billing") == 4
    assert sample(registry, "tomqueue_jobs", state="running", queue="billing") == 0
    assert sample(registry, "tomqueue_oldest_job_age_seconds", queue="billing") == 30
    assert sample(registry, "tomqueue_oldest_job_age_seconds", queue="default") == 0
    clock[0] = 1.9
    sample(registry, "tomqueue_jobs", state="failed", queue="default")
    assert reads == [0.0]  # one query for every scrape within the ttl
    clock[0] = 2.0
    sample(registry, "tomqueue_jobs", state="failed", queue="default")
    assert reads == [0.0, 2.0]


def test_job_gauges_serve_nothing_when_the_database_cannot_answer(caplog):
    def read():
        raise OSError("connection refused")

    registry = CollectorRegistry()
    registry.register(JobGauges(read))
    with caplog.at_level(logging.WARNING):
        assert sample(registry, "tomqueue_jobs", state="failed", queue="default") is None
    assert "could not read the job counts" in caplog.text
