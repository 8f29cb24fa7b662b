"""Servers restarted under a running system: workers, managers and producers reconnect,
and every committed job runs."""

import subprocess
import threading
import time

import pytest
from sqlalchemy.exc import OperationalError

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.jobs import Record
from tomqueue.errors import DatabaseUnavailableError

pytestmark = pytest.mark.faults


def produce(labels, pace=0.02):
    """Enqueue each label, retrying while PostgreSQL is down (the app's part of the deal)."""
    for label in labels:
        while True:
            try:
                tomqueue.enqueue(Record(label))
                break
            except (OperationalError, DatabaseUnavailableError):
                time.sleep(0.2)
        time.sleep(pace)


def runs_by_label(tq, prefix):
    return dict(
        tq.sql(
            "SELECT label, count(*) FROM test_runs WHERE label LIKE %s GROUP BY label", prefix + "%"
        )
    )


def run_through(tq, fast_env, prefix, restart):
    tq.spawn("worker", "--concurrency", "2", env=fast_env)
    tq.spawn("deferred", env=fast_env)
    labels = [f"{prefix}{n}" for n in range(150)]
    producer = threading.Thread(target=produce, args=(labels,))
    producer.start()
    wait_until(lambda: len(runs_by_label(tq, prefix)) >= 30, timeout=30)
    subprocess.run(restart, check=True, timeout=120)
    producer.join(180)
    wait_until(
        lambda: len(runs_by_label(tq, prefix)) == len(labels),
        timeout=120,
        message="every job ran after the restart",
    )
    wait_until(lambda: tq.pending_count() == 0, timeout=30)
    return runs_by_label(tq, prefix)


def test_rabbitmq_restart_mid_stream(tq, fast_env):
    runs = run_through(tq, fast_env, "rb", [ROOT / "bin" / "rabbitmq-restart"])
    assert all(count == 1 for count in runs.values())


def test_postgres_restart_mid_stream(tq, fast_env):
    runs = run_through(tq, fast_env, "pg", [ROOT / "bin" / "postgres-restart"])
    # a job whose completion was in flight when the server went down may run again
    duplicates = sum(count - 1 for count in runs.values())
    assert duplicates <= 2, f"{duplicates} duplicate runs"


def test_every_database_connection_terminated(tq, fast_env):
    name = tq.database_url.rsplit("/", 1)[1]
    terminate = [
        "psql",
        tq.database_url.replace("postgresql+psycopg://", "postgresql://"),
        "-qc",
        f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    ]
    runs = run_through(tq, fast_env, "term", terminate)
    assert sum(count - 1 for count in runs.values()) <= 2
