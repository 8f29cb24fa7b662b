"""Concurrency limits and serial keys: ``serial_key`` and ``parked_on`` on the jobs table.

``serial_key`` is what a job's ``serial_key()`` returned at enqueue: jobs sharing one run
one at a time, in id order, so the worker asks "is there a row of my key with a lower id?"
(the partial index on (serial_key, id) answers it with one probe). ``parked_on`` names the
gate a job waits at ("limit:<class>" or "serial:<key>") when it reached a worker while its
class had no free slot or its key's turn had not come: a parked row is neither announced
nor swept until a finishing job (or, after a crash, a sweep) wakes it, which reads the
partial index on (parked_on, priority, id).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tomqueue_jobs", sa.Column("serial_key", sa.Text, nullable=True))
    op.add_column("tomqueue_jobs", sa.Column("parked_on", sa.Text, nullable=True))
    op.create_index(
        "ix_tomqueue_jobs_serial_key",
        "tomqueue_jobs",
        ["serial_key", "id"],
        postgresql_where=sa.text("serial_key IS NOT NULL"),
    )
    op.create_index(
        "ix_tomqueue_jobs_parked_on",
        "tomqueue_jobs",
        ["parked_on", "priority", "id"],
        postgresql_where=sa.text("parked_on IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tomqueue_jobs_parked_on", table_name="tomqueue_jobs")
    op.drop_index("ix_tomqueue_jobs_serial_key", table_name="tomqueue_jobs")
    op.drop_column("tomqueue_jobs", "parked_on")
    op.drop_column("tomqueue_jobs", "serial_key")
