"""Celery 5, the durable set-up: RabbitMQ broker, acks late, persistent messages."""

import os

from celery import Celery

from bench.results import insert_result as body

app = Celery("bench", broker=os.environ["BENCH_AMQP_URL"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_default_delivery_mode="persistent",
    task_ignore_result=True,
    task_default_queue="bench-celery",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="insert_result")
def insert_result(key: int, sent: float) -> None:
    body(key, sent)
