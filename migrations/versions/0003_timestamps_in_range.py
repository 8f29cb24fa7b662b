"""Keep every timestamp of a job within the calendar tomqueue can read (years 1 to 9999).

PostgreSQL accepts timestamps from 4713 BC to 294276 AD and +/-infinity; Python, and so the
psycopg driver, only years 1 to 9999. A row with any such value (written by plain SQL) could
not be read by the deferred manager, the sweeps, a worker's lock or `tomqueue jobs`. Rows
already out of range are failed here with a last_error naming the column and its value (the
column is set to the time of the migration, so every reader can read the row again); CHECK
constraints refuse new ones, with an error the writer sees at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("run_at", "created_at", "updated_at", "locked_at", "failed_at", "released_at")


def in_range(column: str) -> str:
    """True (or NULL, which a CHECK accepts) for a value Python's datetime can hold."""
    return f"{column} >= '0001-01-02 00:00:00+00' AND {column} <= '9999-12-30 00:00:00+00'"


def upgrade() -> None:
    for column in COLUMNS:
        changes = {
            "failed_at": "now()",
            "released_at": "NULL",
            "locked_at": "NULL",
            "locked_by": "NULL",
            "lock_key": "NULL",
            "updated_at": "now()",
            column: "now()",
        }
        assignments = ", ".join(f"{name} = {value}" for name, value in changes.items())
        op.execute(
            f"""UPDATE tomqueue_jobs SET
                last_error = '{column} ' || {column}::text || ' is outside the years 1 to '
                    || '9999 that tomqueue can read, so the job was failed and its {column} '
                    || 'set to the time of the migration. Check the job, then `tomqueue retry '
                    || id::text || '`.' || COALESCE(E'\\nprevious error: ' || last_error, ''),
                {assignments}
            WHERE NOT ({in_range(column)})"""
        )
    for column in COLUMNS:
        op.create_check_constraint(
            f"tomqueue_jobs_{column}_in_range", "tomqueue_jobs", in_range(column)
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_constraint(f"tomqueue_jobs_{column}_in_range", "tomqueue_jobs", type_="check")
