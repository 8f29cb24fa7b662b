"""Procrastinate 3 on PostgreSQL (the database-polling design)."""

import os

import procrastinate

from bench.results import insert_result as body

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_PROCRASTINATE_DSN"])
)


@app.task(name="insert_result", queue="bench")
def insert_result(key: int, sent: float) -> None:
    body(key, sent)
