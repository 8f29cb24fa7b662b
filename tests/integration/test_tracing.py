"""OpenTelemetry through the API only: the enqueue's PRODUCER span is the parent (and the
link) of every attempt's CONSUMER span, through the row, for jobs run at once, released
later and retried; with no SDK, nothing is stored."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.obs_app import FailsTwice, Succeeds

pytestmark = pytest.mark.integration

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans():
    """The SDK with an in-memory exporter (a global provider can be set once a process)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def named(exporter, prefix, kind):
    return [
        s for s in exporter.get_finished_spans() if s.name.startswith(prefix) and s.kind == kind
    ]


def test_the_perform_span_is_the_child_of_the_enqueue_span_through_the_row(tq, spans, run_all):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("web request") as request:
        job_id = tomqueue.enqueue(Succeeds("traced"))
    [enqueue] = named(spans, "enqueue", SpanKind.PRODUCER)
    assert enqueue.name == f"enqueue {Succeeds.class_name()}"
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert enqueue.attributes["messaging.message.id"] == str(job_id)
    stored = json.loads(tq.job(job_id)["trace_context"])
    trace_id, span_id = f"{enqueue.context.trace_id:032x}", f"{enqueue.context.span_id:016x}"
    version, stored_trace, stored_span, flags = stored["traceparent"].split("-")
    assert (version, stored_trace, stored_span) == ("00", trace_id, span_id)
    assert int(flags, 16) & 1  # sampled

    run_all()
    wait_until(lambda: named(spans, "perform", SpanKind.CONSUMER), timeout=20)
    [perform] = named(spans, "perform", SpanKind.CONSUMER)
    assert perform.name == f"perform {Succeeds.class_name()}"
    assert perform.context.trace_id == enqueue.context.trace_id
    assert perform.parent.span_id == enqueue.context.span_id
    assert [link.context.span_id for link in perform.links] == [enqueue.context.span_id]
    assert perform.attributes["messaging.message.id"] == str(job_id)
    assert perform.attributes["tomqueue.job.attempt"] == 1
    assert perform.status.status_code is StatusCode.UNSET


def test_a_released_and_retried_job_joins_its_enqueue_trace_on_every_attempt(tq, spans, run_all):
    run_all()
    job_id = tomqueue.enqueue(
        FailsTwice("traced twice"), run_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    [enqueue] = named(spans, "enqueue", SpanKind.PRODUCER)
    wait_until(lambda: len(named(spans, "perform", SpanKind.CONSUMER)) == 2, timeout=30)
    attempts = sorted(
        named(spans, "perform", SpanKind.CONSUMER),
        key=lambda s: s.attributes["tomqueue.job.attempt"],
    )
    assert [s.attributes["tomqueue.job.attempt"] for s in attempts] == [1, 2]
    for span in attempts:
        assert span.parent.span_id == enqueue.context.span_id
        assert span.context.trace_id == enqueue.context.trace_id
        assert span.status.status_code is StatusCode.ERROR
        assert [e.attributes["exception.type"] for e in span.events] == ["ValueError"]
    assert tq.job(job_id)["failed_at"] is not None


def test_without_an_sdk_nothing_is_stored_in_the_row(tq):
    code = (
        "import tomqueue; from tests.obs_app import Succeeds; "
        "print(tomqueue.enqueue(Succeeds('untraced')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=tq.environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job_id = int(result.stdout.strip())
    assert tq.job(job_id)["trace_context"] is None
