"""Create tomqueue_jobs with Delayed::Job's columns and tomqueue's release/lease columns.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tomqueue_jobs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("handler", sa.Text, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("run_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("locked_at", TS),
        sa.Column("locked_by", sa.Text),
        sa.Column("failed_at", TS),
        sa.Column("queue", sa.String(255)),
        sa.Column("created_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("released_at", TS),
        sa.Column("crashes", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("lock_key", sa.Integer),
    )
    op.create_index(
        "ix_tomqueue_jobs_unreleased_run_at",
        "tomqueue_jobs",
        ["run_at"],
        postgresql_where=sa.text("failed_at IS NULL AND released_at IS NULL"),
    )
    op.create_index(
        "ix_tomqueue_jobs_locked_at",
        "tomqueue_jobs",
        ["locked_at"],
        postgresql_where=sa.text("locked_at IS NOT NULL"),
    )
    op.create_index(
        "ix_tomqueue_jobs_failed_at",
        "tomqueue_jobs",
        ["failed_at"],
        postgresql_where=sa.text("failed_at IS NOT NULL"),
    )
    op.create_index(
        "ix_tomqueue_jobs_released_at",
        "tomqueue_jobs",
        ["released_at"],
        postgresql_where=sa.text(
            "failed_at IS NULL AND locked_at IS NULL AND released_at IS NOT NULL"
        ),
    )


def downgrade() -> None:
    op.drop_table("tomqueue_jobs")
