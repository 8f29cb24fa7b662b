"""Create tomqueue_job_history: what a job reported (progress, fields) and how it ended.

A job that succeeds is deleted from tomqueue_jobs; its history row says it completed, for
``TOMQUEUE_STATUS_TTL`` (or the class's ``status_ttl``) seconds, with its last progress and
fields. The row is written by the same statement that deletes the job (or fails it for
good), so the worker's hot path gains no statement; a job that reports progress while it
runs upserts it. The deferred manager purges expired rows in small batches
(``expires_at``); ``finished_at`` serves throughput queries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tomqueue_job_history",
        sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("class_name", sa.Text),
        sa.Column("queue", sa.Text),
        sa.Column("priority", sa.Integer),
        sa.Column("enqueued_at", TS),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("attempts", sa.Integer),
        sa.Column("outcome", sa.Text),
        sa.Column("duration_seconds", sa.Double()),
        sa.Column("progress_value", sa.BigInteger),
        sa.Column("progress_total", sa.BigInteger),
        sa.Column("fields", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", TS),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('succeeded', 'failed')",
            name="tomqueue_job_history_outcome",
        ),
    )
    op.create_index(
        "ix_tomqueue_job_history_expires_at",
        "tomqueue_job_history",
        ["expires_at"],
        postgresql_where=sa.text("expires_at IS NOT NULL"),
    )
    op.create_index(
        "ix_tomqueue_job_history_finished_at",
        "tomqueue_job_history",
        ["finished_at"],
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("tomqueue_job_history")
