"""Tracing: OpenTelemetry spans from ``enqueue`` to ``perform``, through the API only.

``TraceEnqueue`` (enqueue stack) opens a PRODUCER span around writing the rows and stores
the current W3C trace context (``traceparent``, ``tracestate``) in each row's
``trace_context`` column. ``TracePerform`` (worker stack, on the job's own thread, so the
job's own spans nest under it) opens a CONSUMER span whose parent is that context, with a
link to it as the messaging conventions ask. The context rides in the row, not the
message: a job released later by the deferred manager, retried, or recovered by the sweep
still joins its enqueue's trace.

Only ``opentelemetry-api`` is imported: with no SDK installed by the application every
span is a non-recording no-op, nothing is injected, and ``trace_context`` stays NULL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tomqueue.queues import shown_queue
from tomqueue.worker.outcome import Outcome

if TYPE_CHECKING:  # the stacks' contexts; importing them here would load SQLAlchemy
    from tomqueue.enqueue.context import EnqueueContext
    from tomqueue.worker.context import WorkContext

log = logging.getLogger(__name__)

TRACER_NAME = "tomqueue"
MESSAGING_SYSTEM = "tomqueue"
# a carrier bigger than this is not stored (tracestate is bounded at 512 characters by the
# W3C spec; anything much larger is not a trace context)
MAX_CARRIER_CHARS = 2048


def _tracer() -> trace.Tracer:
    # asked each time: an SDK installed after import (or per test) is used at once
    return trace.get_tracer(TRACER_NAME)


def inject_current() -> str | None:
    """The current trace context as JSON text for the row, or None if nothing traces."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return None
    text = json.dumps(carrier, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= MAX_CARRIER_CHARS else None


def extract(stored: str | None) -> Context | None:
    """The context a row's ``trace_context`` holds; None if none, or not one we wrote."""
    if not stored:
        return None
    try:
        carrier = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(carrier, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in carrier.items()
    ):
        return None
    return propagate.extract(carrier)


EnqueueNext = Callable[["EnqueueContext"], list[int]]
WorkNext = Callable[["WorkContext"], Outcome]


class TraceEnqueue:
    """Enqueue stack, after Validate: a PRODUCER span around the write, its context
    stored in every row written."""

    def __call__(self, ctx: EnqueueContext, call_next: EnqueueNext) -> list[int]:
        names = sorted({type(job).class_name() for job in ctx.jobs})
        name = names[0] if len(names) == 1 else "jobs"
        attributes: dict[str, str | int] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "send",
            "messaging.batch.message_count": len(ctx.jobs),
        }
        with _tracer().start_as_current_span(
            f"enqueue {name}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier = inject_current()
            if carrier is not None:
                ctx.new_jobs = [replace(new, trace_context=carrier) for new in ctx.new_jobs]
            ids = call_next(ctx)
            if len(ids) == 1:
                span.set_attribute("messaging.message.id", str(ids[0]))
            return ids


class TracePerform:
    """Worker stack, just outside Invoke (on the job's thread): a CONSUMER span for the
    attempt, the child of the enqueue span the row names and linked to it."""

    def __call__(self, ctx: WorkContext, call_next: WorkNext) -> Outcome:
        row = ctx.locked_row
        parent = extract(row.trace_context) if row is not None else None
        links = []
        if parent is not None:
            producer = trace.get_current_span(parent).get_span_context()
            if producer.is_valid:
                links.append(Link(producer))
        job_class = type(ctx.job).class_name()
        attributes: dict[str, str | int] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "process",
            "messaging.destination.name": shown_queue(row.queue if row else None),
            "messaging.message.id": str(ctx.job_id),
            "tomqueue.job.class": job_class,
            "tomqueue.job.attempt": (row.attempts + 1) if row is not None else 1,
            "tomqueue.worker": ctx.worker_name,
        }
        with _tracer().start_as_current_span(
            f"perform {job_class}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ) as span:
            outcome = call_next(ctx)
            if outcome is not Outcome.SUCCEEDED and ctx.error is not None:
                span.record_exception(ctx.error)
                span.set_status(Status(StatusCode.ERROR, type(ctx.error).__name__))
            return outcome
