"""tomqueue_jobs.trace_context: the enqueuer's W3C trace context, for the perform span.

``tomqueue.enqueue`` stores the current OpenTelemetry context (``traceparent`` and
``tracestate``, as JSON) in the row, so the worker's perform span joins the enqueue's
trace however the job reaches it: announced at once, released later by the deferred
manager, retried, or recovered by the sweep. NULL when nothing traces (no SDK set up).
A nullable column with no default: adding it rewrites nothing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tomqueue_jobs", sa.Column("trace_context", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("tomqueue_jobs", "trace_context")
