"""Schema migrations: bring the database to the newest alembic revision, idempotently."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

from tomqueue.database import ADVISORY_NAMESPACE, MIGRATION_LOCK_KEY, retry_on_disconnect

_MIGRATION_LOCK = MIGRATION_LOCK_KEY  # one migrator at a time


def migrations_directory() -> Path:
    """The alembic scripts: inside the installed package, or beside it in a checkout."""
    packaged = Path(__file__).resolve().parent / "_migrations"
    if (packaged / "env.py").exists():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if (checkout / "env.py").exists():
        return checkout
    raise FileNotFoundError("tomqueue's migrations are missing from this installation")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade under an advisory lock, so concurrent deploys cannot race each other."""

    def run() -> None:
        engine = create_engine(database_url, poolclass=pool.NullPool)
        try:
            with engine.begin() as conn:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                    {"ns": ADVISORY_NAMESPACE, "key": _MIGRATION_LOCK},
                )
                config = alembic_config(database_url)
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
        finally:
            engine.dispose()

    retry_on_disconnect(run, "migrate the schema", database_url, attempts=3)


def current_revision(database_url: str) -> str | None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT to_regclass('tomqueue_alembic_version') IS NOT NULL")
            ).scalar_one()
            if not exists:
                return None
            value = conn.execute(text("SELECT version_num FROM tomqueue_alembic_version")).scalar()
            return None if value is None else str(value)
    finally:
        engine.dispose()
