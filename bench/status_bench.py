"""What reporting progress costs a drain: jobs that increment their progress every
millisecond against the same jobs reporting nothing.

    .venv/bin/python -m bench.status_bench [--jobs 2000] [--steps 5] [--concurrency 4] [--runs 3]

Each variant gets a fresh database (migrated) and prefix; ``--jobs`` jobs are enqueued,
then one in-process worker with ``--concurrency`` slots drains them. Each job sleeps 1 ms
``--steps`` times; the "progress" variant sets ``progress.total`` and calls
``progress.increment()`` after every step (the throttle, ``status_throttle``, 1 s by
default, lets the first increment write and carries the last on the success delete).
Figures: jobs/s from the first job's start to the last one's end (read from
tomqueue_job_history, which every job gets), the median of ``--runs`` runs (the variants
alternate), and the history writes per job besides the delete (counted on the engine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid

import pika
import psycopg
from sqlalchemy import event

import tomqueue
from tomqueue.app import App
from tomqueue.broker import Topology, delete_topology
from tomqueue.migrate import upgrade
from tomqueue.settings import Settings
from tomqueue.worker.process import Worker

ADMIN = os.environ.get(
    "TOMQUEUE_BENCH_DATABASE_URL", "postgresql+psycopg://tomqueue:tomqueue@127.0.0.1:5432/tomqueue"
)
AMQP = os.environ.get("TOMQUEUE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class Plain(tomqueue.Job):
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def perform(self) -> None:
        for _ in range(self.steps):
            time.sleep(0.001)


class Reporting(tomqueue.Job):
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def perform(self) -> None:
        self.progress.total = self.steps
        for _ in range(self.steps):
            time.sleep(0.001)
            self.progress.increment()


def drain(
    job_class: type[tomqueue.Job], jobs: int, steps: int, concurrency: int
) -> tuple[float, float]:
    """(jobs/s, history writes per job besides the delete) for one variant."""
    name = f"tq_bench_status_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(ADMIN), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    settings = Settings(database_url=url, amqp_url=AMQP, prefix=f"benchstatus.{name}")
    app = App(settings, pool_size=concurrency + 2)
    try:
        upgrade(url)
        writes: list[int] = []

        def count(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
            if statement.lstrip().startswith("INSERT INTO tomqueue_job_history"):
                writes.append(1)

        event.listen(app.engine, "before_cursor_execute", count)
        app.enqueue_many([job_class(steps) for _ in range(jobs)], wait_for_broker=True)
        worker = Worker(app, concurrency=concurrency)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM tomqueue_jobs").fetchone() != (0,):
                time.sleep(0.05)
            row = conn.execute(
                "SELECT count(*), extract(epoch FROM max(finished_at) - min(started_at))"
                " FROM tomqueue_job_history WHERE outcome = 'succeeded'"
            ).fetchone()
        worker.stop()
        thread.join(30)
        assert row is not None and row[0] == jobs, row
        return jobs / float(row[1]), len(writes) / jobs
    finally:
        app.close()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        delete_topology(connection.channel(), Topology(settings.prefix))
        connection.close()
        with psycopg.connect(libpq(ADMIN), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=5, help="1 ms sleeps per job")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    variants = (("plain", Plain), ("progress every ms", Reporting))
    rates: dict[str, list[float]] = {label: [] for label, _ in variants}
    writes: dict[str, float] = {}
    for _ in range(args.runs):
        for label, job_class in variants:
            rate, per_job = drain(job_class, args.jobs, args.steps, args.concurrency)
            rates[label].append(rate)
            writes[label] = per_job
    for label, _ in variants:
        runs = ", ".join(f"{r:.0f}" for r in rates[label])
        print(
            f"{label:>20}: {statistics.median(rates[label]):6.0f} jobs/s (runs: {runs}); "
            f"{writes[label]:.2f} history writes/job besides the delete"
        )


if __name__ == "__main__":
    main()
