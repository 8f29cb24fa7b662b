"""Migration 0003 fails rows whose run_at no reader could load, instead of every reader
crashing on them."""

import psycopg
import pytest
from click.testing import CliRunner

from tests.conftest import libpq
from tomqueue.cli import main as cli
from tomqueue.migrate import upgrade

COLUMNS = ("run_at", "created_at", "updated_at", "locked_at", "failed_at", "released_at")
BAD = [
    ("run_at", "infinity"),
    ("run_at", "-infinity"),
    ("run_at", "20000-01-01 00:00:00+00"),
    ("created_at", "0001-01-01 00:00:00+14"),
    ("released_at", "infinity"),
]

pytestmark = pytest.mark.integration


def test_rows_out_of_range_are_failed_by_the_migration(tq):
    url = libpq(tq.database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        for column in COLUMNS:
            conn.execute(
                f"ALTER TABLE tomqueue_jobs DROP CONSTRAINT tomqueue_jobs_{column}_in_range"
            )
        conn.execute("DROP TABLE tomqueue_job_history")  # 0004 creates it again
        conn.execute("DROP INDEX ix_tomqueue_jobs_queue")  # and 0005 this
        conn.execute("ALTER TABLE tomqueue_jobs DROP COLUMN unique_key")  # and 0006 this
        conn.execute("DROP TABLE tomqueue_cron_fires")  # and 0007 this
        conn.execute(
            "ALTER TABLE tomqueue_jobs DROP COLUMN serial_key, DROP COLUMN parked_on"
        )  # 0008
        conn.execute("ALTER TABLE tomqueue_jobs DROP COLUMN trace_context")  # and 0009 this
        conn.execute("UPDATE tomqueue_alembic_version SET version_num = '0002'")
        for column, value in BAD:
            conn.execute(
                f"INSERT INTO tomqueue_jobs (handler, {column}) VALUES "
                """('{"v":1,"class":"tests.jobs.Record","state":{"label":"x"}}', %s)""",
                (value,),
            )
    upgrade(tq.database_url)
    rows = tq.sql("SELECT failed_at, last_error FROM tomqueue_jobs ORDER BY id")
    assert len(rows) == len(BAD)
    for (column, _), (failed_at, last_error) in zip(BAD, rows, strict=True):
        assert failed_at is not None
        assert f"{column} " in last_error and "outside the years 1 to 9999" in last_error
        assert "tomqueue retry" in last_error
    assert CliRunner().invoke(cli, ["jobs"]).exit_code == 0  # every row readable again
