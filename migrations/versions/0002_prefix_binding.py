"""Create tomqueue_meta, where the database records the prefix its jobs belong to.

The jobs table has no prefix column: every sweep, the deferred manager and the operator
commands read all of its rows. Two prefixes on one database would therefore release,
recover and fail each other's jobs; recording one prefix lets every process refuse to
start under another (tomqueue/prefix_binding.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tomqueue_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tomqueue_meta")
