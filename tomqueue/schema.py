"""tomqueue's tables, described once for SQLAlchemy (the migrations create them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

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

META_TABLE = "tomqueue_meta"

# facts about the database as a whole, as key/value text; "prefix" is the TOMQUEUE_PREFIX
# its jobs belong to (tomqueue/prefix_binding.py)
meta = Table(
    META_TABLE,
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)
