"""One database, one prefix: the database records the prefix its jobs belong to, and every
process under another prefix refuses to start instead of releasing or failing its jobs."""

import subprocess
import sys
import threading

import pika
import pytest
from sqlalchemy import create_engine, event, pool

import tomqueue
from tests.conftest import AMQP_URL, ROOT
from tests.jobs import Record
from tomqueue.broker import Topology, delete_topology
from tomqueue.default_app import default_app
from tomqueue.errors import ConfigurationError
from tomqueue.prefix_binding import claim_prefix, mismatch_message

pytestmark = pytest.mark.integration


def recorded(tq):
    return tq.scalar("SELECT value FROM tomqueue_meta WHERE key = 'prefix'")


@pytest.fixture
def other_prefix(tq):
    """A second prefix on the test's database; its queues are deleted afterwards, should
    anything have declared them."""
    prefix = f"{tq.prefix}.other"
    yield prefix
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        delete_topology(connection.channel(), Topology(prefix))
    finally:
        connection.close()


def run(tq, argv, prefix):
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        env=tq.environ | {"TOMQUEUE_PREFIX": prefix},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_binds_an_unbound_database_and_refuses_another_prefix(tq, other_prefix):
    assert recorded(tq) is None  # the template is migrated with no prefix recorded
    first = tq.cli("migrate")
    assert first.returncode == 0, first.stderr
    assert f"database bound to prefix '{tq.prefix}'" in first.stdout
    assert recorded(tq) == tq.prefix
    other = run(tq, ["tomqueue", "migrate"], other_prefix)
    assert other.returncode == 1
    assert other.stderr.strip() == "error: " + mismatch_message(tq.prefix, other_prefix)
    assert recorded(tq) == tq.prefix


def test_the_first_enqueue_claims_the_database_in_one_round_trip(tq):
    statements: list[str] = []
    event.listen(
        default_app().engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *rest: statements.append(sql),
    )
    tomqueue.enqueue(Record("claim-1"))
    tomqueue.enqueue(Record("claim-2"))
    assert recorded(tq) == tq.prefix
    assert len([s for s in statements if "tomqueue_meta" in s]) == 1


@pytest.mark.parametrize(
    "argv",
    [["tomqueue.worker", "--app", "tests.jobs"], ["tomqueue.deferred"], ["tomqueue", "jobs"]],
    ids=["worker", "deferred", "cli"],
)
def test_a_process_under_another_prefix_refuses_to_start(tq, other_prefix, argv):
    job_id = tomqueue.enqueue(Record("not-yours"))
    result = run(tq, argv, other_prefix)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "error: " + mismatch_message(tq.prefix, other_prefix), result.stderr
    assert "Traceback" not in result.stderr
    job = tq.job(job_id)
    assert job is not None
    assert job["failed_at"] is None and job["locked_by"] is None and job["attempts"] == 0
    assert recorded(tq) == tq.prefix


def test_enqueue_under_another_prefix_is_refused(tq, other_prefix):
    tomqueue.enqueue(Record("first"))
    tomqueue.configure(prefix=other_prefix)
    with pytest.raises(ConfigurationError) as refused:
        tomqueue.enqueue(Record("second"))
    assert str(refused.value) == mismatch_message(tq.prefix, other_prefix)
    assert tq.pending_count() == 1


def test_rebind_is_refused_while_a_job_is_pending_then_moves_the_database(tq, other_prefix):
    job_id = tomqueue.enqueue(Record("pending"))
    refused = run(tq, ["tomqueue", "migrate", "--rebind-prefix"], other_prefix)
    assert refused.returncode == 1
    assert "cannot rebind this database" in refused.stderr
    assert f"1 pending job(s) (failed_at IS NULL) belong to prefix '{tq.prefix}'" in (
        refused.stderr
    )
    assert recorded(tq) == tq.prefix

    tq.sql("UPDATE tomqueue_jobs SET failed_at = now(), last_error = 'x' WHERE id = %s", job_id)
    moved = run(tq, ["tomqueue", "migrate", "--rebind-prefix"], other_prefix)
    assert moved.returncode == 0, moved.stderr
    assert f"database rebound to prefix '{other_prefix}' (was '{tq.prefix}')" in moved.stdout
    assert recorded(tq) == other_prefix

    listed = run(tq, ["tomqueue", "jobs", "--failed"], other_prefix)
    assert listed.returncode == 0 and str(job_id) in listed.stdout  # failed jobs move over
    old = tq.cli("jobs")
    assert old.returncode == 1
    assert old.stderr.strip() == "error: " + mismatch_message(other_prefix, tq.prefix)


def test_racing_processes_agree_on_one_prefix(tq):
    engines = [create_engine(tq.database_url, poolclass=pool.NullPool) for _ in range(6)]
    start = threading.Barrier(len(engines))
    results: dict[int, str] = {}

    def claim(n: int) -> None:
        start.wait()
        results[n] = claim_prefix(engines[n], f"racer{n}")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for engine in engines:
        engine.dispose()
    assert len(results) == len(engines)
    assert set(results.values()) == {recorded(tq)}


def test_a_database_without_the_binding_table_says_to_migrate(tq):
    tq.sql("DROP TABLE tomqueue_meta")
    with pytest.raises(ConfigurationError, match="run `tomqueue migrate`"):
        tomqueue.enqueue(Record("old-schema"))
    assert tq.pending_count() == 0
