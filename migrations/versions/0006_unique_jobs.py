"""Unique jobs: a job's ``unique_key`` and the partial unique index that enforces it.

``unique_key`` is the job class's name, a space, and what the job's ``unique_key()``
returned. The index holds it only while the job waits to run (queued, scheduled or waiting
for a retry: not failed for good and not locked by a worker), so PostgreSQL itself refuses
a second waiting job of the same class and key, whichever process or transaction enqueues
it; enqueue turns the refusal (ON CONFLICT DO NOTHING) into the waiting job's id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tomqueue_jobs", sa.Column("unique_key", sa.Text, nullable=True))
    op.create_index(
        "ux_tomqueue_jobs_unique_waiting",
        "tomqueue_jobs",
        ["unique_key"],
        unique=True,
        postgresql_where=sa.text(
            "unique_key IS NOT NULL AND failed_at IS NULL AND locked_at IS NULL"
        ),
    )


def downgrade() -> None:
    op.drop_index("ux_tomqueue_jobs_unique_waiting", table_name="tomqueue_jobs")
    op.drop_column("tomqueue_jobs", "unique_key")
