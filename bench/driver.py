"""Enqueue side of the benchmark, one system at a time, in that system's own environment.

    python -m bench.driver SYSTEM single N      -> enqueues N jobs one call at a time
    python -m bench.driver SYSTEM batch N       -> enqueues N jobs in batches of 500
    python -m bench.driver SYSTEM latency N MS  -> N jobs one at a time, MS apart
    python -m bench.driver tomqueue raw N       -> N bare INSERT+commit of the same row shape
                                                  into tomqueue_jobs (the floor for enqueue)

Prints one JSON line: {"rate": jobs per second} (latency mode prints {"sent": N}).
Imports only the system named, so peers' code never enters tomqueue's environment.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

BATCH = 500
Send = Callable[[int, float], None]
SendMany = Callable[[list[tuple[int, float]]], None]
Finish = Callable[[], None]


def tomqueue_finish() -> None:
    """enqueue returns at the commit; the timing ends when RabbitMQ has confirmed every
    announcement, so the figure includes the broker's part, not only the database's."""
    from tomqueue.default_app import default_app

    app = default_app()
    if "announcer" in app.__dict__ and not app.announcer.flush(60):
        raise SystemExit("announcements were given up: the broker refused or was down")


def raw_insert(count: int) -> float:
    """Rows per second for a bare INSERT+commit of a job row, one per transaction."""
    import psycopg

    from tomqueue.default_app import current_settings

    url = current_settings().database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        handler = '{"v":1,"class":"bench.jobs_tomqueue.InsertResult","state":{"key":-3,"sent":0}}'
        start = time.perf_counter()
        for _ in range(count):
            conn.execute(
                "INSERT INTO tomqueue_jobs (priority, handler, run_at, created_at, updated_at,"
                " released_at) VALUES (0, %s, now() + interval '1 day', now(), now(), NULL)",
                (handler,),
            )
            conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DELETE FROM tomqueue_jobs WHERE handler = %s", (handler,))
        conn.commit()
    return count / elapsed


def tomqueue_side() -> tuple[Send, SendMany]:
    import tomqueue
    from bench.jobs_tomqueue import InsertResult

    def one(key: int, sent: float) -> None:
        tomqueue.enqueue(InsertResult(key, sent))

    def many(items: list[tuple[int, float]]) -> None:
        tomqueue.enqueue_many([InsertResult(k, s) for k, s in items])

    return one, many


def celery_side() -> tuple[Send, SendMany]:
    from celery import group

    from bench.peers.celery_app import insert_result

    def one(key: int, sent: float) -> None:
        insert_result.delay(key, sent)

    def many(items: list[tuple[int, float]]) -> None:
        group(insert_result.s(k, s) for k, s in items).apply_async()

    return one, many


def dramatiq_side() -> tuple[Send, SendMany]:
    from dramatiq import group

    from bench.peers.dramatiq_app import insert_result

    def one(key: int, sent: float) -> None:
        insert_result.send(key, sent)

    def many(items: list[tuple[int, float]]) -> None:
        group(insert_result.message(k, s) for k, s in items).run()

    return one, many


def procrastinate_side() -> tuple[Send, SendMany]:
    from bench.peers.procrastinate_app import app, insert_result

    app.open()

    def one(key: int, sent: float) -> None:
        insert_result.defer(key=key, sent=sent)

    def many(items: list[tuple[int, float]]) -> None:
        insert_result.batch_defer(*({"key": k, "sent": s} for k, s in items))

    return one, many


SIDES = {
    "tomqueue": tomqueue_side,
    "celery": celery_side,
    "dramatiq": dramatiq_side,
    "procrastinate": procrastinate_side,
}


def main() -> None:
    system, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "raw":
        print(json.dumps({"rate": raw_insert(count)}))
        return
    one, many = SIDES[system]()
    finish: Finish = tomqueue_finish if system == "tomqueue" else (lambda: None)
    one(-1, time.time())  # warm-up: connections, topology
    finish()
    start = time.perf_counter()
    if mode == "single":
        for key in range(count):
            one(key, time.time())
    elif mode == "batch":
        for first in range(0, count, BATCH):
            now = time.time()
            many([(k, now) for k in range(first, min(count, first + BATCH))])
    elif mode == "latency":
        gap = float(sys.argv[4]) / 1000
        for key in range(count):
            one(key, time.time())
            time.sleep(gap)
        finish()
        print(json.dumps({"sent": count}))
        return
    finish()
    elapsed = time.perf_counter() - start
    print(json.dumps({"rate": count / elapsed}))


if __name__ == "__main__":
    main()
