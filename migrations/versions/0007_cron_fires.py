"""tomqueue_cron_fires: one row per (schedule, fire time) that a deferred manager handled.

The primary key is what makes a cron schedule fire once per fire time across every
deferred manager and restart: a manager inserts the row and enqueues the job in one
transaction, and a second manager's insert of the same (name, fire_at) does nothing. A row
with no job_id is a baseline: the fire time at which a schedule was first seen, recorded so
that earlier fire times never run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tomqueue_cron_fires",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("fire_at", TS, primary_key=True),
        sa.Column("job_id", sa.BigInteger, nullable=True),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.text("now()")),
    )


def downgrade() -> None:
    op.drop_table("tomqueue_cron_fires")
