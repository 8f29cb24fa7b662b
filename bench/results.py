"""The shared job body: one INSERT into bench_results, on a connection kept per thread.

Imported by tomqueue's bench job and by every peer's task, so all run the same work.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg

_local = threading.local()


def results_dsn() -> str:
    return os.environ["BENCH_RESULTS_DSN"]


def insert_result(key: int, sent: float) -> None:
    started = time.time()
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(results_dsn(), autocommit=True)
    conn.execute(
        "INSERT INTO bench_results (key, sent, started) VALUES (%s, %s, %s)", (key, sent, started)
    )
