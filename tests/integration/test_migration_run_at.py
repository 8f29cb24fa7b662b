"""Migration 0003 fails rows whose run_at no reader could load, instead of every reader
crashing on them."""

import psycopg
import pytest

from tests.conftest import libpq
from tomqueue.migrate import upgrade

pytestmark = pytest.mark.integration


def test_rows_out_of_range_are_failed_by_the_migration(tq):
    url = libpq(tq.database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE tomqueue_jobs DROP CONSTRAINT tomqueue_jobs_run_at_in_range")
        conn.execute("UPDATE tomqueue_alembic_version SET version_num = '0002'")
        for value in ("infinity", "-infinity", "20000-01-01 00:00:00+00"):
            conn.execute(
                "INSERT INTO tomqueue_jobs (handler, run_at) VALUES "
                """('{"v":1,"class":"tests.jobs.Record","state":{"label":"x"}}', %s)""",
                (value,),
            )
    upgrade(tq.database_url)
    rows = tq.sql("SELECT failed_at, last_error FROM tomqueue_jobs ORDER BY id")
    assert len(rows) == 3
    for failed_at, last_error in rows:
        assert failed_at is not None
        assert "is outside the years 1 to 9999" in last_error and "tomqueue retry" in last_error
