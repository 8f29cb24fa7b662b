"""Alembic environment for tomqueue: runs online against the configured database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from tomqueue.schema import metadata

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
connection = config.attributes.get("connection")


def run() -> None:
    options = {
        "target_metadata": metadata,
        "version_table": "tomqueue_alembic_version",
    }
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
