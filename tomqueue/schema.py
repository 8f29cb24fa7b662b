"""tomqueue's tables, described once for SQLAlchemy (the migrations create them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

JOBS_TABLE = "tomqueue_jobs"

jobs = Table(
    JOBS_TABLE,
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("handler", Text, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("run_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("locked_at", DateTime(timezone=True), nullable=True),
    Column("locked_by", Text, nullable=True),
    Column("failed_at", DateTime(timezone=True), nullable=True),
    Column("queue", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # tomqueue's own columns, beyond Delayed::Job's:
    # when the notification for the current run_at was last published (NULL: the deferred
    # manager still has to release it)
    Column("released_at", DateTime(timezone=True), nullable=True),
    # consecutive runs that died with their worker (poison detection)
    Column("crashes", Integer, nullable=False, server_default=text("0")),
    # the advisory-lock key of the worker holding the job: its liveness proof
    Column("lock_key", Integer, nullable=True),
    # "<class name> <key>" of a unique job (tomqueue.Job.unique_key; migration 0006)
    Column("unique_key", Text, nullable=True),
    # what the job's serial_key() returned: jobs sharing one run one at a time, by id
    Column("serial_key", Text, nullable=True),
    # the gate a job waits at for a slot or its turn ("limit:<class>", "serial:<key>")
    Column("parked_on", Text, nullable=True),
    # the W3C trace context of the enqueue, as JSON (tomqueue.tracing; migration 0009)
    Column("trace_context", Text, nullable=True),
)

Index(
    "ix_tomqueue_jobs_unreleased_run_at",
    jobs.c.run_at,
    postgresql_where=text("failed_at IS NULL AND released_at IS NULL"),
)
Index(
    "ix_tomqueue_jobs_locked_at",
    jobs.c.locked_at,
    postgresql_where=text("locked_at IS NOT NULL"),
)
Index(
    "ix_tomqueue_jobs_failed_at",
    jobs.c.failed_at,
    postgresql_where=text("failed_at IS NOT NULL"),
)
Index(
    "ix_tomqueue_jobs_released_at",
    jobs.c.released_at,
    postgresql_where=text("failed_at IS NULL AND locked_at IS NULL AND released_at IS NOT NULL"),
)
Index(
    "ix_tomqueue_jobs_queue",
    jobs.c.queue,
    postgresql_where=text("queue IS NOT NULL"),
)
# one waiting job per class and unique key: enqueue's ON CONFLICT DO NOTHING relies on it
Index(
    "ux_tomqueue_jobs_unique_waiting",
    jobs.c.unique_key,
    unique=True,
    postgresql_where=text("unique_key IS NOT NULL AND failed_at IS NULL AND locked_at IS NULL"),
)

# a serial key's head (its lowest id) in one probe (migration 0008)
Index(
    "ix_tomqueue_jobs_serial_key",
    jobs.c.serial_key,
    jobs.c.id,
    postgresql_where=text("serial_key IS NOT NULL"),
)
# the jobs parked at a gate, best first: what a finishing job wakes (migration 0008)
Index(
    "ix_tomqueue_jobs_parked_on",
    jobs.c.parked_on,
    jobs.c.priority,
    jobs.c.id,
    postgresql_where=text("parked_on IS NOT NULL"),
)

META_TABLE = "tomqueue_meta"

# facts about the database as a whole, as key/value text; "prefix" is the TOMQUEUE_PREFIX
# its jobs belong to (tomqueue/prefix_binding.py)
meta = Table(
    META_TABLE,
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

HISTORY_TABLE = "tomqueue_job_history"

# what a job reported and how it ended (migration 0004): written by the statement that
# deletes a succeeded job or fails one for good, and upserted by progress reports while it
# runs; kept until expires_at (status_ttl after the end; max_run_time + status_ttl after
# a running job's last report), then purged by the deferred leader
history = Table(
    HISTORY_TABLE,
    metadata,
    Column("job_id", BigInteger, primary_key=True, autoincrement=False),
    Column("class_name", Text, nullable=True),
    Column("queue", Text, nullable=True),
    Column("priority", Integer, nullable=True),
    Column("enqueued_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=True),
    # 'succeeded' | 'failed' once the job has ended, NULL while it runs
    Column("outcome", Text, nullable=True),
    Column("duration_seconds", Double, nullable=True),
    Column("progress_value", BigInteger, nullable=True),
    Column("progress_total", BigInteger, nullable=True),
    Column("fields", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    CheckConstraint(
        "outcome IS NULL OR outcome IN ('succeeded', 'failed')",
        name="tomqueue_job_history_outcome",
    ),
)

Index(
    "ix_tomqueue_job_history_expires_at",
    history.c.expires_at,
    postgresql_where=text("expires_at IS NOT NULL"),
)
Index(
    "ix_tomqueue_job_history_finished_at",
    history.c.finished_at,
    postgresql_where=text("finished_at IS NOT NULL"),
)

CRON_FIRES_TABLE = "tomqueue_cron_fires"

# one row per (cron schedule, fire time) a deferred manager handled (migration 0007): the
# primary key makes a fire time run once across managers; job_id NULL marks a baseline
cron_fires = Table(
    CRON_FIRES_TABLE,
    metadata,
    Column("name", Text, primary_key=True),
    Column("fire_at", DateTime(timezone=True), primary_key=True),
    Column("job_id", BigInteger, nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
