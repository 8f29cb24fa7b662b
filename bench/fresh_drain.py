"""One timed drain on a fresh database and prefix: what the flow-control benchmarks share.

``timed_drain(enqueue, ...)`` creates and migrates a database, lets ``enqueue(app)`` write
and announce the jobs (it returns how many), then runs one in-process worker until the
jobs table is empty and returns jobs/s from the worker's start to the last row's delete.
The database and the RabbitMQ queues are dropped afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence

import pika
import psycopg

from bench.status_bench import ADMIN, AMQP, libpq
from tomqueue.app import App
from tomqueue.broker import Topology, delete_topology
from tomqueue.migrate import upgrade
from tomqueue.settings import Settings
from tomqueue.worker.process import Worker


def timed_drain(
    enqueue: Callable[[App], int],
    concurrency: int,
    queues: str = "default",
    named: Sequence[str] = (),
) -> float:
    name = f"tq_bench_drain_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(ADMIN), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    settings = Settings(database_url=url, amqp_url=AMQP, prefix=f"benchdrain.{name}", queues=queues)
    app = App(settings, pool_size=concurrency + 4)
    try:
        upgrade(url)
        jobs = enqueue(app)
        worker = Worker(app, concurrency=concurrency)
        started = time.monotonic()
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM tomqueue_jobs").fetchone()[0]:  # type: ignore[index]
                time.sleep(0.01)
        elapsed = time.monotonic() - started
        worker.stop()
        thread.join(30)
        return jobs / elapsed
    finally:
        app.close()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        delete_topology(connection.channel(), Topology(settings.prefix), list(named))
        connection.close()
        with psycopg.connect(libpq(ADMIN), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
