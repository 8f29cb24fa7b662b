"""Index the named queue of jobs that have one.

A worker serving every queue finds the named queues with a loose index scan of this index
(one probe per name, however many jobs wait); the dashboard's and the CLI's ``--queue``
filters use it too. Jobs of the default queue (NULL) are left out, so they cost nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tomqueue_jobs_queue",
        "tomqueue_jobs",
        ["queue"],
        postgresql_where=sa.text("queue IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tomqueue_jobs_queue", table_name="tomqueue_jobs")
