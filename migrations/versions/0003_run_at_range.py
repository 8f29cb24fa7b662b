"""Keep run_at within the calendar tomqueue can read (years 1 to 9999).

PostgreSQL accepts timestamps from 4713 BC to 294276 AD and 'infinity'; Python, and so the
psycopg driver, only years 1 to 9999. A row whose run_at is outside that range (written by
plain SQL) could not be read by the deferred manager, the sweeps or `tomqueue jobs`. Rows
already out of range are failed here with a last_error saying so (and run_at set to now(),
so every reader can read them again); a CHECK constraint refuses new ones, with an error
the writer sees at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

IN_RANGE = (
    "run_at >= '0001-01-02 00:00:00+00' AND run_at <= '9999-12-30 00:00:00+00'"
    " AND run_at <> 'infinity' AND run_at <> '-infinity'"
)


def upgrade() -> None:
    op.execute(
        f"""UPDATE tomqueue_jobs SET
            last_error = 'run_at ' || run_at::text || ' is outside the years 1 to 9999 that '
                || 'tomqueue can read, so the job was failed and its run_at set to the time '
                || 'of the migration. Set a valid run_at, then `tomqueue retry ' || id::text
                || '`.' || COALESCE(E'\\nprevious error: ' || last_error, ''),
            failed_at = now(), run_at = now(), released_at = NULL,
            locked_at = NULL, locked_by = NULL, lock_key = NULL, updated_at = now()
        WHERE NOT ({IN_RANGE})"""
    )
    op.create_check_constraint("tomqueue_jobs_run_at_in_range", "tomqueue_jobs", IN_RANGE)


def downgrade() -> None:
    op.drop_constraint("tomqueue_jobs_run_at_in_range", "tomqueue_jobs", type_="check")
