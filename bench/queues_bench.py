"""What named queues cost a drain: the same no-op jobs in the default queue, and spread over
four named queues that one worker serves (eight RabbitMQ consumers per level instead of one,
and FairHand's turns between them).

    .venv/bin/python -m bench.queues_bench [--jobs 3000] [--concurrency 4] [--runs 3]

Each variant gets a fresh database (migrated) and prefix; the jobs are enqueued and
announced first, then one in-process worker drains them. Figure: jobs/s from the worker's
start to the last row's delete, the median of ``--runs`` runs (the variants alternate).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import pika
import psycopg

import tomqueue
from bench.status_bench import ADMIN, AMQP, libpq
from tomqueue.app import App
from tomqueue.broker import Topology, delete_topology
from tomqueue.migrate import upgrade
from tomqueue.settings import Settings
from tomqueue.worker.process import Worker

NAMED = ["billing", "email", "reports", "sync"]


class Noop(tomqueue.Job):
    def perform(self) -> None:
        pass


def drain(named: bool, jobs: int, concurrency: int) -> float:
    name = f"tq_bench_queues_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(ADMIN), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    queues = ",".join(NAMED) if named else "default"
    settings = Settings(
        database_url=url, amqp_url=AMQP, prefix=f"benchqueues.{name}", queues=queues
    )
    app = App(settings, pool_size=concurrency + 4)
    try:
        upgrade(url)
        batch = [Noop() for _ in range(jobs)]
        if named:
            for i, queue in enumerate(NAMED):
                app.enqueue_many(batch[i :: len(NAMED)], queue=queue, wait_for_broker=True)
        else:
            app.enqueue_many(batch, wait_for_broker=True)
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
        delete_topology(connection.channel(), Topology(settings.prefix), NAMED)
        connection.close()
        with psycopg.connect(libpq(ADMIN), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"default queue": [], "4 named queues": []}
    for _ in range(args.runs):
        results["default queue"].append(drain(False, args.jobs, args.concurrency))
        results["4 named queues"].append(drain(True, args.jobs, args.concurrency))
    base = statistics.median(results["default queue"])
    for variant, figures in results.items():
        median = statistics.median(figures)
        runs = ", ".join(f"{f:.0f}" for f in figures)
        print(f"{variant:>16}: {median:7.0f} jobs/s (runs: {runs}; {median / base:.2f}x)")


if __name__ == "__main__":
    main()
